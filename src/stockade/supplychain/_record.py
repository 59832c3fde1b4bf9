"""Cached verification records: reuse a verification only for the same digest and policy.

A record binds the image digest, the effective-policy hash and the evidence, and is signed with
Ed25519 by the verifier. Whoever stores the records holds only the public key, so it cannot forge
or alter one. A record that does not verify, or whose digest or policy hash differs, is ignored
by the caller (it re-verifies): :func:`open_record` raises, it never returns a partial record.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ed25519

from stockade.models import Clock, Frozen

from ._cosign import SignatureEvidence
from ._errors import SignatureVerificationError
from ._policy import VerificationPolicy

__all__ = ["SealedRecord", "VerificationRecord", "open_record", "policy_hash", "seal_record"]

_CONTEXT = b"stockade verification record v1\n"


def policy_hash(policy: VerificationPolicy) -> str:
    """sha256 of the policy's canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(policy.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


class VerificationRecord(Frozen):
    digest: str
    policy_hash: str
    evidence: SignatureEvidence
    verified_at: datetime


class SealedRecord(Frozen):
    record: VerificationRecord
    signature: str  # base64 Ed25519 over context + canonical JSON of the record


def _canonical(record: VerificationRecord) -> bytes:
    body = json.dumps(record.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return _CONTEXT + body.encode()


def seal_record(
    key: ed25519.Ed25519PrivateKey,
    *,
    evidence: SignatureEvidence,
    policy: VerificationPolicy,
    clock: Clock,
) -> SealedRecord:
    record = VerificationRecord(
        digest=evidence.manifest_digest,
        policy_hash=policy_hash(policy),
        evidence=evidence,
        verified_at=clock.now(),
    )
    signature = base64.b64encode(key.sign(_canonical(record))).decode()
    return SealedRecord(record=record, signature=signature)


def open_record(
    sealed: SealedRecord,
    public_key: ed25519.Ed25519PublicKey,
    *,
    digest: str,
    policy: VerificationPolicy,
) -> VerificationRecord:
    """The record, if it is intact and bound to ``digest`` and this exact ``policy``."""
    fix = "re-verify the image; the cached record cannot be used"
    try:
        raw = base64.b64decode(sealed.signature, validate=True)
        public_key.verify(raw, _canonical(sealed.record))
    except (InvalidSignature, ValueError):
        raise SignatureVerificationError(
            "cached verification record: got a bad signature, expected one by the verifier key", fix
        ) from None
    record = sealed.record
    if record.digest != digest:
        raise SignatureVerificationError(
            f"cached verification record: got digest {record.digest}, expected {digest}", fix
        )
    want = policy_hash(policy)
    if record.policy_hash != want:
        raise SignatureVerificationError(
            f"cached verification record: got policy {record.policy_hash}, expected {want}", fix
        )
    return record
