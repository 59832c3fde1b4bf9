"""Checkpoints are Ed25519 signatures over (head, key id, seq, ts) and nothing else verifies."""

from __future__ import annotations

import pytest

from stockade.audit import (
    CHECKPOINT_FORMAT,
    Checkpoint,
    checkpoint_from_event,
    checkpoint_message,
    key_id,
    sign_checkpoint,
    verify_checkpoint,
)
from stockade.errors import AuditVerifyError
from stockade.models import AuditEvent

from ._helpers import KEYS, OTHER

HEAD = "sha256:" + "ab" * 32


def _cp() -> Checkpoint:
    return sign_checkpoint(KEYS.signing_key, seq=5, ts="2026-01-01T00:00:00.000000Z", head=HEAD)


def test_a_signed_checkpoint_verifies_with_its_public_key() -> None:
    cp = _cp()
    verify_checkpoint(cp, KEYS.public_key)
    assert cp.key_id == key_id(KEYS.public_key)
    assert cp.key_id.startswith("ed25519:")
    assert len(cp.key_id) == 8 + 64


def test_the_signature_covers_the_documented_message() -> None:
    cp = _cp()
    msg = checkpoint_message(seq=5, ts=cp.ts, head=HEAD, key_id=cp.key_id)
    assert msg == (
        b"stockade-audit-checkpoint-v1\n"
        + b'{"head":"'
        + HEAD.encode()
        + b'","key_id":"'
        + cp.key_id.encode()
        + b'","seq":5,"ts":"2026-01-01T00:00:00.000000Z"}'
    )


@pytest.mark.guarantee("audit-verify-uses-outofband-key")
def test_a_checkpoint_does_not_verify_with_another_key() -> None:
    with pytest.raises(AuditVerifyError, match="expected ed25519:"):
        verify_checkpoint(_cp(), OTHER.public_key)


@pytest.mark.parametrize(
    "change",
    [{"seq": 6}, {"ts": "2026-01-01T00:00:00.000001Z"}, {"head": "sha256:" + "cd" * 32}],
)
def test_changing_any_signed_field_breaks_the_signature(change: dict[str, object]) -> None:
    forged = _cp().model_copy(update=change)
    with pytest.raises(AuditVerifyError, match="does not verify"):
        verify_checkpoint(forged, KEYS.public_key)


def test_a_signature_that_is_not_canonical_base64_is_refused() -> None:
    bad = _cp().model_copy(update={"sig": "!!not base64"})
    with pytest.raises(AuditVerifyError, match="base64"):
        verify_checkpoint(bad, KEYS.public_key)


def test_the_export_document_names_format_and_id() -> None:
    cp = _cp()
    doc = cp.export()
    assert doc["format"] == CHECKPOINT_FORMAT
    assert doc["id"] == cp.id
    assert doc["id"].startswith("sha256:")
    assert set(doc) == {"format", "head", "id", "key_id", "seq", "sig", "ts"}


def _event(**kw: object) -> AuditEvent:
    base: dict[str, object] = {
        "seq": 5,
        "ts": "t",
        "type": "checkpoint",
        "prev": HEAD,
        "mac": "m",
        "data": {"key_id": KEYS.key_id, "sig": "AAAA"},
    }
    return AuditEvent.model_validate({**base, **kw})


@pytest.mark.parametrize(
    "kw",
    [
        {"type": "tool_call"},
        {"data": {"key_id": KEYS.key_id, "sig": "AAAA", "extra": 1}},
        {"data": {"key_id": 3, "sig": "AAAA"}},
        {"run_id": "r"},
        {"session_id": ""},
        {"seq": 0},
    ],
)
def test_a_malformed_checkpoint_line_is_refused(kw: dict[str, object]) -> None:
    with pytest.raises(AuditVerifyError):
        checkpoint_from_event(_event(**kw))
