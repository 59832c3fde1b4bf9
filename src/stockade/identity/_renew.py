"""Renewing a served certificate before it expires (the CA on the same host; for a CA elsewhere
see :mod:`._external`)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from cryptography import x509

from stockade.errors import IdentityError
from stockade.models import Clock

from ._ca import CertificateAuthority
from ._roles import identity_from_certificate

__all__ = ["install_pair", "is_due", "renew_if_due"]


def _replace(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def is_due(current: x509.Certificate, clock: Clock, fraction: float = 1 / 3) -> bool:
    """Whether less than ``fraction`` of ``current``'s lifetime is left."""
    lifetime = current.not_valid_after_utc - current.not_valid_before_utc
    return current.not_valid_after_utc - clock.now() <= lifetime * fraction


def install_pair(cert: Path, key: Path, cert_pem: bytes, key_pem: bytes) -> None:
    """Replace the served pair on disk: the key first (0600), then the certificate."""
    _replace(key, key_pem, 0o600)
    _replace(cert, cert_pem, 0o644)


def renew_if_due(
    ca: CertificateAuthority, cert: Path, key: Path, clock: Clock, *, fraction: float = 1 / 3
) -> bool:
    """If less than ``fraction`` of ``cert``'s lifetime is left, issue a new one with the same
    name, role, hosts and lifetime and replace ``cert``/``key`` on disk (key first, 0600).
    Return whether it renewed; the caller then loads the pair (``ApiServer.rotate``)."""
    try:
        current = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as e:
        raise IdentityError(f"cannot read the served certificate {cert}: {e}", "") from e
    lifetime = current.not_valid_after_utc - current.not_valid_before_utc
    if not is_due(current, clock, fraction):
        return False
    peer = identity_from_certificate(current)
    san = current.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hosts = tuple(
        [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        + list(san.get_values_for_type(x509.DNSName))
    )
    validity = min(lifetime - timedelta(minutes=1), timedelta(days=30))
    issued = ca.issue(peer.name, peer.role, clock, validity=validity, hosts=hosts)
    install_pair(cert, key, issued.cert_pem, issued.key_pem)
    return True
