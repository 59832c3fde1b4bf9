"""Public keys and raw signature checks: ECDSA (P-256/384/521), RSA PKCS#1 v1.5, Ed25519."""

from __future__ import annotations

import base64
import binascii
import hashlib

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ._errors import TrustMaterialError

__all__ = [
    "PublicKey",
    "b64decode_strict",
    "key_id",
    "load_certificates",
    "load_public_key",
    "signature_valid",
    "spki_der",
]

PublicKey = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
_EC_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}
MIN_RSA_BITS = 2048


def b64decode_strict(text: str | bytes, what: str) -> bytes:
    """Standard base64 (newlines allowed, as cosign writes them); anything else is refused."""
    raw = text.encode() if isinstance(text, str) else text
    raw = b"".join(raw.split())
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise TrustMaterialError(
            f"{what} is not valid base64: got {raw[:24]!r}..., expected standard base64",
            "re-create the signature; the stored value is corrupt",
        ) from None


def load_public_key(data: bytes | str) -> PublicKey:
    """A PEM (or DER) SubjectPublicKeyInfo of a supported algorithm; others are refused."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        if raw.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_public_key(raw)
        else:
            key = serialization.load_der_public_key(raw)
    except (ValueError, UnsupportedAlgorithm):
        raise TrustMaterialError(
            "public key is unreadable: expected a PEM or DER SubjectPublicKeyInfo",
            "export the key with `openssl pkey -pubout` or use the cosign.pub file",
        ) from None
    return _supported(key)


def _supported(key: object) -> PublicKey:
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in _EC_HASH:
            raise TrustMaterialError(
                f"unsupported EC curve: got {key.curve.name}, expected P-256, P-384 or P-521",
                "use an ECDSA P-256 key",
            )
        return key
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise TrustMaterialError(
                f"RSA key too small: got {key.key_size} bits, expected >= {MIN_RSA_BITS}",
                "use a 2048-bit or larger RSA key, or ECDSA P-256",
            )
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        return key
    raise TrustMaterialError(
        f"unsupported key type: got {type(key).__name__}, expected ECDSA, RSA or Ed25519",
        "use an ECDSA P-256 key",
    )


def certificate_key(cert: x509.Certificate) -> PublicKey:
    try:
        return _supported(cert.public_key())
    except UnsupportedAlgorithm:
        raise TrustMaterialError(
            "certificate key algorithm is not supported", "use an ECDSA or RSA certificate"
        ) from None


def load_certificates(data: bytes | str, what: str) -> list[x509.Certificate]:
    """Every certificate in a PEM bundle (at least one)."""
    raw = data.encode() if isinstance(data, str) else data
    try:
        certs = x509.load_pem_x509_certificates(raw)
    except ValueError:
        raise TrustMaterialError(
            f"{what} is not a PEM certificate bundle", f"provide {what} as PEM certificates"
        ) from None
    return certs


def spki_der(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PublicKey) -> str:
    """``sha256:<hex>`` of the DER SubjectPublicKeyInfo (the Rekor log id form)."""
    return "sha256:" + hashlib.sha256(spki_der(key)).hexdigest()


def signature_valid(key: PublicKey, signature: bytes, data: bytes) -> bool:
    """True iff ``signature`` over ``data`` verifies under ``key`` (hash chosen by key type)."""
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(_EC_HASH[key.curve.name]()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            key.verify(signature, data)
    except InvalidSignature:
        return False
    return True
