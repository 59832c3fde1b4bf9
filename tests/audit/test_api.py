"""The audit package's public surface is curated, and the documented usage works as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade import audit, paths
from stockade.models import AuditSink

EXPECTED = {
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_TYPE",
    "GENESIS",
    "HMAC_KEY_FILE",
    "PATTERNS",
    "PUBLIC_KEY_FILE",
    "RESERVED_TYPES",
    "SIGNING_KEY_FILE",
    "TORN_TAIL_TYPE",
    "AuditKeys",
    "AuditLog",
    "AuditTornTailError",
    "Checkpoint",
    "Finding",
    "FsyncMode",
    "ProblemKind",
    "Redactor",
    "VerifyReport",
    "canonical",
    "checkpoint_from_event",
    "checkpoint_message",
    "event_mac",
    "key_id",
    "line_hash",
    "load_hmac_key",
    "load_keys",
    "load_or_create_keys",
    "load_public_key",
    "parse_expected_head",
    "parse_line",
    "seal_event",
    "sign_checkpoint",
    "verify_checkpoint",
    "verify_file",
    "verify_log",
}


def test_all_is_curated_and_every_name_exists() -> None:
    assert set(audit.__all__) == EXPECTED
    assert audit.__all__ == sorted(
        audit.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n)
    )
    for name in audit.__all__:
        assert hasattr(audit, name), name


def test_the_usage_in_the_package_docstring_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path))
    with audit.AuditLog.open(paths.audit_log(), paths.key_dir(), secrets={"hunter2"}) as sink:
        assert isinstance(sink, AuditSink)
        sink.add_secrets(["from-the-secret-store"])
        event = sink.append(
            "tool_call",
            {"tool": "fetch", "args": {"q": "hunter2 from-the-secret-store"}},
            run_id="r",
            session_id="s",
        )
    assert event.data["args"]["q"] == "[REDACTED:secret] [REDACTED:secret]"
    pub = paths.key_dir() / audit.PUBLIC_KEY_FILE
    report = audit.verify_file(
        paths.audit_log(),
        public_key=audit.load_public_key(pub),
        hmac_key=audit.load_hmac_key(paths.key_dir() / audit.HMAC_KEY_FILE),
    )
    assert report.ok
    assert report.unsealed == 0
