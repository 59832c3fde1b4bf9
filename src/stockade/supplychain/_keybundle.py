"""Sigstore bundles signed with a plain key (``--key``): sigstore-python verifies only keyless
bundles, so stockade checks these itself, offline, as numbered steps:

1. the trusted root yields the Rekor keys;
2. the bundle is v0.1-v0.3 JSON with a public-key hint (no certificate) and a message signature;
3. the bundle's message digest is the artifact's sha256;
4. the signature verifies under the given key (over the artifact's digest);
5. a transparency-log entry's inclusion promise (SET) verifies under a trusted Rekor key, and its
   hashedrekord body binds this signature, digest and key.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

from ._bundle import BundleEvidence
from ._crypto import PublicKey, b64decode_strict, key_id, load_public_key
from ._errors import SignatureVerificationError, TrustMaterialError
from ._rekor import verify_set
from ._trustroot import read_trusted_root

__all__ = ["verify_bundle_with_key"]

MAX_BUNDLE = 1024 * 1024
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
_MEDIA_TYPES = {
    "application/vnd.dev.sigstore.bundle+json;version=0.1",
    "application/vnd.dev.sigstore.bundle+json;version=0.2",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
}


def _fail(step: str, got: str, expected: str) -> SignatureVerificationError:
    return SignatureVerificationError(f"{step}: got {got}, expected {expected}")


def _verify_digest(key: PublicKey, signature: bytes, digest: bytes, artifact: bytes | None) -> bool:
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name != "secp256r1":
                return False
            key.verify(signature, digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        elif artifact is not None:
            key.verify(signature, artifact)
        else:
            return False  # Ed25519 signs the message itself: a digest alone cannot be checked
    except InvalidSignature:
        return False
    return True


def _field(doc: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(doc, dict) or p not in doc:
            raise _fail("step 2 (bundle)", f"no {'.'.join(path)}", "a complete bundle")
        doc = doc[p]
    return doc


def verify_bundle_with_key(
    bundle_json: bytes, artifact: bytes | str, *, key_pem: bytes, trusted_root: bytes
) -> BundleEvidence:
    """Verify a key-signed message-signature bundle over ``artifact`` (bytes or ``sha256:``)."""
    rekor_keys = read_trusted_root(trusted_root).rekor_keys
    try:
        key = load_public_key(key_pem)
    except TrustMaterialError as e:
        raise _fail("step 4 (key)", e.what, "a PEM public key") from None
    if len(bundle_json) > MAX_BUNDLE:
        raise _fail("step 2 (bundle)", f"{len(bundle_json)} bytes", f"at most {MAX_BUNDLE}")
    try:
        doc = json.loads(bundle_json)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail("step 2 (bundle)", "a bundle that is not JSON", "bundle JSON") from None
    media = _field(doc, "mediaType")
    if media not in _MEDIA_TYPES:
        raise _fail("step 2 (bundle)", f"mediaType {str(media)[:80]!r}", "a v0.1-v0.3 bundle")
    material = _field(doc, "verificationMaterial")
    if "publicKey" not in material or any(
        k in material for k in ("certificate", "x509CertificateChain")
    ):
        raise _fail("step 2 (bundle)", "certificate material", "a public-key bundle for --key")
    digest_b64 = _field(doc, "messageSignature", "messageDigest", "digest")
    algorithm = _field(doc, "messageSignature", "messageDigest", "algorithm")
    sig_b64 = _field(doc, "messageSignature", "signature")
    try:
        digest = b64decode_strict(str(digest_b64), "message digest")
        signature = b64decode_strict(str(sig_b64), "signature")
    except TrustMaterialError as e:
        raise _fail("step 2 (bundle)", e.what, "base64 fields") from None
    if algorithm != "SHA2_256":
        raise _fail("step 3 (digest)", f"algorithm {str(algorithm)[:40]!r}", "SHA2_256")

    if isinstance(artifact, str):
        if not _SHA256.fullmatch(artifact):
            raise _fail("step 3 (digest)", repr(artifact[:80]), "sha256:<64 lower-case hex>")
        want, data = bytes.fromhex(artifact.removeprefix("sha256:")), None
    else:
        want, data = hashlib.sha256(artifact).digest(), artifact
    if digest != want:
        raise _fail("step 3 (digest)", f"bundle digest {digest.hex()[:16]}...", want.hex()[:16])
    if not _verify_digest(key, signature, want, data):
        raise _fail("step 4 (signature)", "a signature that does not verify", "one by --key")

    entries = _field(doc, "verificationMaterial", "tlogEntries")
    if not isinstance(entries, list) or not entries:
        raise _fail("step 5 (transparency log)", "no tlog entries", "a Rekor entry")
    entry = entries[0]
    try:
        promise = entry["inclusionPromise"]["signedEntryTimestamp"]
        log_id_hex = b64decode_strict(entry["logId"]["keyId"], "logId").hex()
        set_doc = {
            "SignedEntryTimestamp": promise,
            "Payload": {
                "body": entry["canonicalizedBody"],
                "integratedTime": int(entry["integratedTime"]),
                "logID": log_id_hex,
                "logIndex": int(entry["logIndex"]),
            },
        }
    except (KeyError, TypeError, ValueError, TrustMaterialError):
        raise _fail(
            "step 5 (transparency log)", "no usable inclusion promise", "a SET to verify offline"
        ) from None
    logged = verify_set(
        "step 5 (transparency log)",
        json.dumps(set_doc),
        rekor_keys,
        signature=signature,
        payload_sha256=want.hex(),
        signer_key=key,
        signer_cert=None,
    )
    return BundleEvidence(
        kind="message_signature",
        subject=key_id(key),
        issuer=None,
        log_index=logged.log_index,
        integrated_time=logged.integrated_time,
        artifact_digest="sha256:" + want.hex(),
    )
