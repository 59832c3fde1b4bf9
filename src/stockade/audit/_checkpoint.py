"""Pure core: Ed25519-signed checkpoints.

A checkpoint is a log line of ``type`` ``"checkpoint"`` whose ``prev`` is the *head*: the hash of
the line before it. Its ``data`` is ``{"key_id": K, "sig": S}`` and ``run_id``/``session_id`` are
null. ``S`` is base64 (standard alphabet, padded) of the Ed25519 signature over
``CHECKPOINT_DOMAIN + canonical({"head": H, "key_id": K, "seq": N, "ts": T})`` where ``N`` and ``T``
are the checkpoint line's own ``seq`` and ``ts``. So a valid signature at ``seq`` N vouches for
every line before it (through the hash chain). ``K`` = ``"ed25519:" + hex(sha256(raw public key))``.

The exported head (``stockade audit head --export``) is the same facts as a small JSON document:
``{"format": "stockade-audit-checkpoint/v1", "head", "id", "key_id", "seq", "sig", "ts"}`` where
``id`` = ``"sha256:" + hex(sha256(signed message))`` names the checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import Field

from stockade.errors import AuditVerifyError
from stockade.models import AuditEvent, Frozen

from ._canon import canonical

__all__ = [
    "CHECKPOINT_DOMAIN",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_TYPE",
    "Checkpoint",
    "checkpoint_from_event",
    "checkpoint_message",
    "key_id",
    "sign_checkpoint",
    "verify_checkpoint",
]

CHECKPOINT_TYPE = "checkpoint"
CHECKPOINT_FORMAT: Literal["stockade-audit-checkpoint/v1"] = "stockade-audit-checkpoint/v1"
CHECKPOINT_DOMAIN = b"stockade-audit-checkpoint-v1\n"
_HASH = r"^sha256:[0-9a-f]{64}$"
_KEY_ID = r"^ed25519:[0-9a-f]{64}$"


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()


def checkpoint_message(*, seq: int, ts: str, head: str, key_id: str) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    return CHECKPOINT_DOMAIN + canonical({"head": head, "key_id": key_id, "seq": seq, "ts": ts})


class Checkpoint(Frozen):
    """A signed statement: the log's line at ``seq`` follows a line whose hash is ``head``."""

    format: Literal["stockade-audit-checkpoint/v1"] = CHECKPOINT_FORMAT
    seq: int = Field(ge=1)
    ts: str = Field(min_length=1)
    head: str = Field(pattern=_HASH)
    key_id: str = Field(pattern=_KEY_ID)
    sig: str = Field(min_length=1)

    @property
    def id(self) -> str:
        msg = checkpoint_message(seq=self.seq, ts=self.ts, head=self.head, key_id=self.key_id)
        return "sha256:" + hashlib.sha256(msg).hexdigest()

    def event_data(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "sig": self.sig}

    def export(self) -> dict[str, Any]:
        """The document ``stockade audit head --export`` prints."""
        return {
            "format": self.format,
            "head": self.head,
            "id": self.id,
            "key_id": self.key_id,
            "seq": self.seq,
            "sig": self.sig,
            "ts": self.ts,
        }


def sign_checkpoint(private_key: Ed25519PrivateKey, *, seq: int, ts: str, head: str) -> Checkpoint:
    """A checkpoint of the chain ``head`` after event ``seq``, signed with ``private_key``."""
    kid = key_id(private_key.public_key())
    sig = private_key.sign(checkpoint_message(seq=seq, ts=ts, head=head, key_id=kid))
    return Checkpoint(seq=seq, ts=ts, head=head, key_id=kid, sig=base64.b64encode(sig).decode())


def checkpoint_from_event(event: AuditEvent) -> Checkpoint:
    """Read the checkpoint a ``checkpoint`` line carries; raise if its shape is wrong."""
    if event.type != CHECKPOINT_TYPE:
        raise AuditVerifyError(f"got a {event.type!r} line, expected a checkpoint", "")
    if (
        set(event.data) != {"key_id", "sig"}
        or event.run_id is not None
        or event.session_id is not None
    ):
        raise AuditVerifyError(
            "checkpoint line has unexpected fields: got data keys "
            f"{sorted(event.data)}, expected ['key_id', 'sig'] and null run/session ids",
            "",
        )
    kid, sig = event.data["key_id"], event.data["sig"]
    if not isinstance(kid, str) or not isinstance(sig, str) or not re.fullmatch(_KEY_ID, kid):
        raise AuditVerifyError("checkpoint key_id/sig are not well-formed strings", "")
    if event.seq < 1:
        raise AuditVerifyError("a checkpoint cannot be the first line (seq 0)", "")
    return Checkpoint(seq=event.seq, ts=event.ts, head=event.prev, key_id=kid, sig=sig)


def verify_checkpoint(cp: Checkpoint, public_key: Ed25519PublicKey) -> None:
    """Raise :class:`AuditVerifyError` unless ``cp`` is signed by ``public_key``."""
    expected = key_id(public_key)
    if cp.key_id != expected:
        raise AuditVerifyError(
            f"checkpoint at seq {cp.seq} names signing key {cp.key_id}, expected {expected}",
            "verify with the public key that signed this log (given out of band)",
        )
    try:
        sig = base64.b64decode(cp.sig, validate=True)
    except (binascii.Error, ValueError) as e:
        raise AuditVerifyError(f"checkpoint at seq {cp.seq}: signature is not base64", "") from e
    if base64.b64encode(sig).decode() != cp.sig:
        raise AuditVerifyError(f"checkpoint at seq {cp.seq}: signature is not canonical base64", "")
    msg = checkpoint_message(seq=cp.seq, ts=cp.ts, head=cp.head, key_id=cp.key_id)
    try:
        public_key.verify(sig, msg)
    except InvalidSignature as e:
        raise AuditVerifyError(
            f"checkpoint at seq {cp.seq}: Ed25519 signature does not verify", ""
        ) from e
