"""``stockade preflight / postflight / evidence``: PASS/FAIL lines, non-zero exit on any FAIL."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.audit import AuditLog
from stockade.cli import main
from stockade.models import RunRecord
from stockade.store import RunStore

from .conftest import T0, StepClock


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path))
    (tmp_path / "policy.yaml").write_text("version: 1\ndefault: deny\n")
    with RunStore.open(tmp_path / "runs.db") as s:
        s.create(RunRecord(run_id="r1", workload="job", created_at=T0))
    (tmp_path / "audit").mkdir(mode=0o700)
    with AuditLog.open(
        tmp_path / "audit" / "audit.jsonl", tmp_path / "keys", clock=StepClock(), fsync="never"
    ) as sink:
        sink.append("run_started", {"workload": "job"}, run_id="r1")
    return tmp_path


def _run(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_preflight_fails_until_the_policy_is_recorded_then_passes(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = str(home / "policy.yaml")
    assert _run(["preflight", "--policy", policy, "--runtime", "namespaces"]) == 1
    out = capsys.readouterr().out
    assert "FAIL policy hash recorded: no policy version is recorded" in out
    assert "PASS audit log verifies" in out
    code = _run(["preflight", "--policy", policy, "--runtime", "namespaces", "--record-policy"])
    out = capsys.readouterr().out
    assert "PASS policy hash recorded" in out
    assert code == (0 if "PASS runtime namespaces" in out else 1)


def test_postflight_passes_on_a_clean_run_and_evidence_exports(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["postflight", "r1"]) == 0
    assert "PASS: 4/4 checks passed" in capsys.readouterr().out
    assert _run(["evidence", "r1", "--out", str(home / "ev")]) == 0
    assert (home / "ev" / "MANIFEST.json").exists()
    assert _run(["postflight", "nope"]) == 1
    assert "FAIL run recorded" in capsys.readouterr().out


def test_retention_rotate_and_prune_from_the_command_line(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(["retention", "rotate"]) == 0
    out = capsys.readouterr().out
    assert "archived" in out
    archive = home / "audit" / "archive"
    assert len(list(archive.glob("*.seal.json"))) == 1
    assert _run(["retention", "prune", "--days", "30"]) == 0
    assert "0 archive(s)" in capsys.readouterr().out
    assert _run(["postflight", "r1"]) == 0  # the new chain verifies and is sealed
