"""Per-request revocation: the CA's signed CRL, re-read when the file changes.

The TLS handshake checks the CRL loaded into the context; a keep-alive connection opened before a
revocation would otherwise stay usable. :class:`CrlWatcher` lets the API check every request's
peer serial against the current CRL. An unreadable, unsigned, foreign or expired CRL raises
(fail closed: the caller refuses the request).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.errors import IdentityError
from stockade.models import Clock

__all__ = ["CrlWatcher"]


class CrlWatcher:
    def __init__(self, ca_cert: Path, crl: Path, clock: Clock) -> None:
        try:
            self._ca = x509.load_pem_x509_certificate(ca_cert.read_bytes())
        except (OSError, ValueError) as e:
            raise IdentityError(f"cannot read the CA certificate {ca_cert}: {e}", "") from e
        self._path = crl
        self._clock = clock
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._crl: x509.CertificateRevocationList | None = None

    def _load(self) -> x509.CertificateRevocationList:
        try:
            st = os.stat(self._path)
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp and self._crl is not None:
                return self._crl
            crl = x509.load_pem_x509_crl(self._path.read_bytes())
        except (OSError, ValueError) as e:
            raise IdentityError(
                f"cannot read the revocation list {self._path}: {e}", "stockade ca crl"
            ) from e
        key = self._ca.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey) or crl.issuer != self._ca.subject:
            raise IdentityError("the revocation list is not from this CA", "stockade ca crl")
        if not crl.is_signature_valid(key):
            raise IdentityError("the revocation list signature does not verify", "stockade ca crl")
        self._stamp, self._crl = stamp, crl
        return crl

    def is_revoked(self, serial: int) -> bool:
        with self._lock:
            crl = self._load()
        next_update = crl.next_update_utc
        if next_update is None or next_update <= self._clock.now():
            raise IdentityError(
                f"the revocation list expired at {next_update}", "re-sign it: stockade ca crl"
            )
        return crl.get_revoked_certificate_by_serial_number(serial) is not None
