"""TLS 1.3-only, mutually authenticated ``ssl.SSLContext`` builders and peer-to-role mapping.

Both sides require a certificate chained to the stockade CA; the server checks the client's leaf
against the CA's CRL (a missing or expired CRL fails every handshake: fail closed).
"""

from __future__ import annotations

import ssl
from pathlib import Path

from stockade.errors import IdentityError

from ._roles import PeerIdentity, identity_from_der

__all__ = ["client_context", "peer_identity", "server_context"]


def _base(purpose: int, ca_cert: Path, cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(purpose)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.maximum_version = ssl.TLSVersion.TLSv1_3
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.verify_flags |= ssl.VERIFY_X509_STRICT
    try:
        ctx.load_verify_locations(cafile=str(ca_cert))
        ctx.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except (OSError, ssl.SSLError) as e:
        raise IdentityError(
            f"cannot load TLS material (CA {ca_cert}, certificate {cert}, key {key}): {e}",
            "check the paths; issue certificates with: stockade ca issue NAME --role ROLE",
        ) from e
    return ctx


def server_context(ca_cert: Path, cert: Path, key: Path, crl: Path) -> ssl.SSLContext:
    """Server side: TLS 1.3 only, client certificate required, CRL checked for the client leaf."""
    ctx = _base(ssl.PROTOCOL_TLS_SERVER, ca_cert, cert, key)
    try:
        ctx.load_verify_locations(cafile=str(crl))
    except (OSError, ssl.SSLError) as e:
        raise IdentityError(
            f"cannot load the revocation list {crl}: {e}",
            "write a fresh one with: stockade ca crl",
        ) from e
    ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def client_context(
    ca_cert: Path, cert: Path, key: Path, *, crl: Path | None = None
) -> ssl.SSLContext:
    """Client side: TLS 1.3 only, the server verified against the CA and its host name."""
    ctx = _base(ssl.PROTOCOL_TLS_CLIENT, ca_cert, cert, key)
    ctx.check_hostname = True
    if crl is not None:
        try:
            ctx.load_verify_locations(cafile=str(crl))
        except (OSError, ssl.SSLError) as e:
            raise IdentityError(f"cannot load the revocation list {crl}: {e}", "") from e
        ctx.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return ctx


def peer_identity(ssl_object: ssl.SSLObject | ssl.SSLSocket | None) -> PeerIdentity:
    """The role identity of the verified peer of a TLS connection (refused when absent)."""
    if ssl_object is None:
        raise IdentityError("the connection is not TLS", "connect with mutual TLS")
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        raise IdentityError("the peer presented no certificate", "connect with a client cert")
    return identity_from_der(der)
