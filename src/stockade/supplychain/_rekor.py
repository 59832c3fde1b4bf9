"""Rekor signed entry timestamps (SET), verified offline against the trusted Rekor keys.

A SET is Rekor's ECDSA signature over the canonical JSON (sorted keys, no spaces) of
``{"body", "integratedTime", "logID", "logIndex"}``. The body is a base64 ``hashedrekord`` entry;
we check it binds the very signature, payload hash and signer (key or certificate) we verify.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from stockade.models import Frozen

from ._crypto import (
    PublicKey,
    b64decode_strict,
    key_id,
    load_public_key,
    signature_valid,
    spki_der,
)
from ._errors import SignatureVerificationError, TrustMaterialError

__all__ = ["RekorEntry", "verify_set"]

MAX_BUNDLE = 64 * 1024


class RekorEntry(Frozen):
    log_index: int
    integrated_time: int
    log_id: str
    body: str


def _fail(step: str, got: str, expected: str) -> SignatureVerificationError:
    return SignatureVerificationError(f"{step}: got {got}, expected {expected}")


def _parse(step: str, bundle: str | bytes) -> tuple[bytes, dict[str, Any]]:
    if len(bundle) > MAX_BUNDLE:
        raise _fail(step, f"a {len(bundle)}-byte Rekor bundle", f"at most {MAX_BUNDLE} bytes")
    try:
        doc = json.loads(bundle)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(
            step, "a Rekor bundle that is not JSON", "SignedEntryTimestamp+Payload"
        ) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("Payload"), dict):
        raise _fail(step, "a Rekor bundle without Payload", "SignedEntryTimestamp+Payload")
    set_b64 = doc.get("SignedEntryTimestamp")
    if not isinstance(set_b64, str):
        raise _fail(step, "no SignedEntryTimestamp", "a base64 SET")
    try:
        sig = b64decode_strict(set_b64, "SignedEntryTimestamp")
    except TrustMaterialError as e:
        raise _fail(step, e.what, "a base64 SET") from None
    return sig, doc["Payload"]


def verify_set(
    step: str,
    bundle: str | bytes,
    rekor_keys: tuple[PublicKey, ...],
    *,
    signature: bytes,
    payload: bytes | None = None,
    payload_sha256: str | None = None,
    signer_key: PublicKey,
    signer_cert: x509.Certificate | None,
) -> RekorEntry:
    """Verify the SET and that its entry binds ``signature`` over ``payload`` by the signer.

    Give ``payload`` bytes, or only their ``payload_sha256`` hex when the bytes are not at hand.
    """
    if payload is not None:
        payload_sha256 = hashlib.sha256(payload).hexdigest()
    if payload_sha256 is None:
        raise _fail(step, "no payload to bind", "the signed payload or its sha256")
    if not rekor_keys:
        raise _fail(step, "no trusted Rekor key", "a Rekor public key in the trust material")
    sig, p = _parse(step, bundle)
    body, itime, log_id, log_index = (
        p.get("body"),
        p.get("integratedTime"),
        p.get("logID"),
        p.get("logIndex"),
    )
    if not (
        isinstance(body, str)
        and isinstance(log_id, str)
        and type(itime) is int
        and type(log_index) is int
    ):
        raise _fail(step, "a malformed SET payload", "body, integratedTime, logID, logIndex")
    key = next((k for k in rekor_keys if key_id(k) == "sha256:" + log_id), None)
    if key is None:
        raise _fail(step, f"logID {log_id[:16]}...", "the id of a trusted Rekor key")
    canonical = json.dumps(
        {"body": body, "integratedTime": itime, "logID": log_id, "logIndex": log_index},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    if not signature_valid(key, sig, canonical):
        raise _fail(step, "a SET that does not verify", "a SET signed by the trusted Rekor key")
    _check_body(
        step,
        body_b64=body,
        signature=signature,
        payload_sha256=payload_sha256,
        signer_key=signer_key,
        signer_cert=signer_cert,
    )
    return RekorEntry(log_index=log_index, integrated_time=itime, log_id=log_id, body=body)


def _check_body(
    step: str,
    *,
    body_b64: str,
    signature: bytes,
    payload_sha256: str,
    signer_key: PublicKey,
    signer_cert: x509.Certificate | None,
) -> None:
    try:
        entry = json.loads(b64decode_strict(body_b64, "Rekor entry body"))
        spec = entry["spec"]
        kind = entry["kind"]
        digest = spec["data"]["hash"]["value"]
        algo = spec["data"]["hash"]["algorithm"]
        logged_sig = b64decode_strict(spec["signature"]["content"], "logged signature")
        logged_signer = b64decode_strict(spec["signature"]["publicKey"]["content"], "signer")
    except (json.JSONDecodeError, KeyError, TypeError, TrustMaterialError, UnicodeDecodeError):
        raise _fail(step, "an unreadable Rekor entry body", "a hashedrekord entry") from None
    if kind != "hashedrekord" or algo != "sha256":
        raise _fail(step, f"entry kind {kind!r}/{algo!r}", "hashedrekord with sha256")
    if digest != payload_sha256:
        raise _fail(step, f"logged payload hash {str(digest)[:16]}...", "the payload's sha256")
    if logged_sig != signature:
        raise _fail(step, "a logged signature that differs", "the signature being verified")
    if signer_cert is not None:
        want = signer_cert.public_bytes(Encoding.PEM)
        try:
            same = x509.load_pem_x509_certificate(logged_signer) == signer_cert
        except ValueError:
            same = False
        if not same and logged_signer.strip() != want.strip():
            raise _fail(step, "a logged certificate that differs", "the signing certificate")
        return

    try:
        logged_key = load_public_key(logged_signer)
    except TrustMaterialError:
        raise _fail(step, "an unreadable logged public key", "the signing key") from None
    if spki_der(logged_key) != spki_der(signer_key):
        raise _fail(step, "a logged public key that differs", "the signing key")
