"""Sign images the way cosign does: a simple-signing payload and a base64 signature annotation."""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ._cosign import ANNOTATION_SIGNATURE, SignatureLayer
from ._errors import ImageReferenceError, TrustMaterialError
from ._reference import ImageReference
from ._simplesigning import SIMPLESIGNING_MEDIA_TYPE, make_payload

__all__ = ["PrivateKey", "load_private_key", "sign_bytes", "sign_image"]

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
_EC_HASH: dict[str, type[hashes.HashAlgorithm]] = {
    "secp256r1": hashes.SHA256,
    "secp384r1": hashes.SHA384,
    "secp521r1": hashes.SHA512,
}


def load_private_key(pem: bytes, password: bytes | None = None) -> PrivateKey:
    """A PEM (PKCS#8 or traditional) ECDSA, RSA or Ed25519 private key."""
    fix = "generate a key with `openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`"
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, TypeError):
        raise TrustMaterialError(
            "signing key is unreadable: expected a PEM private key (and its password if any)", fix
        ) from None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_HASH:
        return key
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size >= 2048:
        return key
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key
    raise TrustMaterialError(
        f"unsupported signing key {type(key).__name__}: expected ECDSA, RSA>=2048 or Ed25519", fix
    )


def sign_bytes(key: PrivateKey, data: bytes) -> bytes:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_EC_HASH[key.curve.name]()))
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    return key.sign(data)


def sign_image(key: PrivateKey, image: ImageReference) -> SignatureLayer:
    """A cosign-compatible signature layer for ``image`` (which must carry its digest).

    The signed ``docker-reference`` is the repository (registry/repository, no tag), as cosign
    writes it, so the signature holds for every tag of that digest in that repository.
    """
    if image.digest is None or not image.digest.startswith("sha256:"):
        raise ImageReferenceError(
            f"cannot sign {image}: got no sha256 digest, expected name@sha256:<digest>",
            "resolve the tag first (stockade image resolve) and sign the digest",
        )
    payload = make_payload(image.name, image.digest)
    signature = base64.b64encode(sign_bytes(key, payload)).decode()
    return SignatureLayer(
        media_type=SIMPLESIGNING_MEDIA_TYPE,
        payload=payload,
        annotations={ANNOTATION_SIGNATURE: signature},
    )
