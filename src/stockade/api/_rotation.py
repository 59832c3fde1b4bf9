"""Automatic rotation of the served certificate before it expires (docs/identity.md).

:class:`CertificateRotation` checks once per :meth:`tick`: with the CA on this host it re-issues
the pair itself (:func:`stockade.identity.renew_if_due`); with the CA elsewhere it takes a pair
from a renewal command or a watched directory (:func:`stockade.identity.renew_external`), which
must pass every check before it replaces anything. Then the server rotates in place: open
connections keep their session, new handshakes get the new certificate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509

from stockade.identity import CertificateAuthority, ExternalRenewer, renew_external, renew_if_due
from stockade.models import Clock

from ._errors import ApiError
from ._metrics import Metrics

__all__ = ["CertificateRotation", "Rotatable"]


class Rotatable(Protocol):
    def rotate(self, cert: Path, key: Path, crl: Path | None = None) -> None: ...


@dataclass
class CertificateRotation:
    """One of ``ca`` (the CA is here) or ``renewer`` (it is not) renews ``cert``/``key``."""

    server: Rotatable
    cert: Path
    key: Path
    ca_cert: Path
    clock: Clock
    crl: Path | None = None
    ca: CertificateAuthority | None = None
    renewer: ExternalRenewer | None = None
    metrics: Metrics | None = None

    def __post_init__(self) -> None:
        if (self.ca is None) == (self.renewer is None):
            raise ApiError(
                "certificate rotation needs exactly one source, got "
                f"{'both' if self.ca else 'neither'} of a local CA and a renewer",
                "renew from the CA on this host, or from a renewal command / directory",
            )

    def tick(self) -> int | None:
        """Renew and rotate if due (or, for a watched directory, if a new pair is there).

        Returns the new serial, or None when nothing changed; raises ``StockadeError`` when a
        renewal was refused or failed (the old certificate keeps serving).
        """
        if self.ca is not None:
            renewed = renew_if_due(self.ca, self.cert, self.key, self.clock)
        else:
            assert self.renewer is not None  # noqa: S101 - checked in __post_init__
            renewed = renew_external(
                self.renewer, self.cert, self.key, self.ca_cert, self.clock, crl=self.crl
            )
        if not renewed:
            return None
        self.server.rotate(self.cert, self.key, self.crl)
        new = x509.load_pem_x509_certificate(self.cert.read_bytes())
        if self.metrics is not None:
            self.metrics.certificate_expiry(
                new.subject.rfc4514_string(), new.not_valid_after_utc.timestamp()
            )
        return int(new.serial_number)
