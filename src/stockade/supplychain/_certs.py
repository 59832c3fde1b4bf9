"""Certificate chains to a trusted root at a given time; signer identity (SANs, OIDC issuer)."""

from __future__ import annotations

from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

from stockade.models import Frozen

from ._errors import SignatureVerificationError

__all__ = ["CertIdentity", "certificate_identity", "verify_chain"]

OID_ISSUER_V1 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = x509.ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
MAX_DEPTH = 6


class CertIdentity(Frozen):
    subjects: tuple[str, ...]  # e-mail, URI and DNS SANs
    issuer: str | None  # Fulcio OIDC issuer (v2 extension preferred, v1 fallback)


def _fail(step: str, got: str, expected: str) -> SignatureVerificationError:
    return SignatureVerificationError(f"{step}: got {got}, expected {expected}")


def _der_utf8(value: bytes) -> str | None:
    """Decode a DER UTF8String (tag 0x0c); None when it is not one."""
    if len(value) < 2 or value[0] != 0x0C:
        return None
    length = value[1]
    offset = 2
    if length & 0x80:
        n = length & 0x7F
        if n == 0 or n > 2 or len(value) < 2 + n:
            return None
        length = int.from_bytes(value[2 : 2 + n], "big")
        offset = 2 + n
    if offset + length != len(value):
        return None
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError:
        return None


def certificate_identity(cert: x509.Certificate) -> CertIdentity:
    subjects: list[str] = []
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        subjects += san.get_values_for_type(x509.RFC822Name)
        subjects += san.get_values_for_type(x509.UniformResourceIdentifier)
        subjects += san.get_values_for_type(x509.DNSName)
    issuer: str | None = None
    for ext in cert.extensions:
        if ext.oid == OID_ISSUER_V2 and isinstance(ext.value, x509.UnrecognizedExtension):
            issuer = _der_utf8(ext.value.value)
            break
    if issuer is None:
        for ext in cert.extensions:
            if ext.oid == OID_ISSUER_V1 and isinstance(ext.value, x509.UnrecognizedExtension):
                try:
                    issuer = ext.value.value.decode("utf-8")
                except UnicodeDecodeError:
                    issuer = None
    return CertIdentity(subjects=tuple(subjects), issuer=issuer)


def _valid_at(cert: x509.Certificate, at: datetime) -> bool:
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(child: x509.Certificate, parent: x509.Certificate) -> bool:
    if child.issuer != parent.subject:
        return False
    try:
        child.verify_directly_issued_by(parent)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def verify_chain(
    step: str,
    leaf: x509.Certificate,
    *,
    untrusted: tuple[x509.Certificate, ...],
    intermediates: tuple[x509.Certificate, ...],
    roots: tuple[x509.Certificate, ...],
    at: datetime,
    require_code_signing: bool,
) -> tuple[x509.Certificate, ...]:
    """Build leaf -> ... -> root where the root is one of ``roots``; every link valid at ``at``.

    ``untrusted`` certificates (from the signature) may only serve as intermediates and must chain
    up to a trusted root; a root supplied by the signature is never an anchor by itself.
    """
    if not roots:
        raise _fail(step, "no trusted root certificates", "at least one configured root")
    if not _valid_at(leaf, at):
        raise _fail(
            step,
            f"signing certificate valid {leaf.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}.."
            f"{leaf.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}",
            f"validity covering the signing time {at:%Y-%m-%dT%H:%M:%SZ}",
        )
    if require_code_signing:
        try:
            eku = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = None
        if eku is None or ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            raise _fail(
                step, "a leaf without the codeSigning usage", "extendedKeyUsage codeSigning"
            )
    root_der = {r.public_bytes(Encoding.DER) for r in roots}
    candidates = (*intermediates, *untrusted, *roots)
    chain = [leaf]
    current = leaf
    for _ in range(MAX_DEPTH):
        parent = next(
            (c for c in candidates if c is not current and _issued_by(current, c)),
            None,
        )
        if parent is None:
            raise _fail(
                step,
                f"no trusted issuer for {current.subject.rfc4514_string() or 'the leaf'}",
                "a chain to a configured root",
            )
        if not _is_ca(parent) or not _valid_at(parent, at):
            raise _fail(
                step,
                f"issuer {parent.subject.rfc4514_string()} not a CA valid at {at:%Y-%m-%d}",
                "a CA certificate valid at the signing time",
            )
        chain.append(parent)
        if parent.public_bytes(Encoding.DER) in root_der:
            return tuple(chain)
        current = parent
    raise _fail(step, f"a chain longer than {MAX_DEPTH}", "a chain to a configured root")
