"""The audit package's public surface is curated, and the documented usage works as written."""

from __future__ import annotations

from pathlib import Path

import pytest

from _surface import surface_problems
from stockade import audit, paths
from stockade.models import AuditSink


def test_the_public_surface_is_curated_resolvable_documented_and_leaks_nothing_private() -> None:
    assert surface_problems(audit, "audit.md") == []


def test_all_keeps_constants_then_classes_then_functions_each_in_order() -> None:
    assert audit.__all__ == sorted(
        audit.__all__, key=lambda n: (not n.isupper(), n[0].islower(), n)
    )


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
