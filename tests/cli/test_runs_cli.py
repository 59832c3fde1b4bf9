from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli, main
from stockade.models import RunRecord
from stockade.store import RunStore


def seed(path: Path) -> None:
    with RunStore.open(path) as s:
        s.create(
            RunRecord(
                run_id="run-1",
                workload="evil\x1b]0;pwned\x07\u202eexe",
                backend="namespaces",
                created_at=datetime(2026, 1, 1, tzinfo=UTC),
            )
        )
        s.add_evidence("run-1", "decision", {"kind": "deny", "reason": "\x1b[2Jx"})


def test_runs_lists_records_with_untrusted_text_neutralised(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db)
    out = CliRunner().invoke(cli, ["runs", "--store", str(db)])
    assert out.exit_code == 0, out.output
    assert "run-1" in out.output
    assert "\x1b" not in out.output
    assert "\u202e" not in out.output


def test_runs_json_is_parseable(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db)
    out = CliRunner().invoke(cli, ["runs", "--store", str(db), "--json"])
    assert json.loads(out.output)[0]["run_id"] == "run-1"


@pytest.mark.guarantee("trace-marks-waived-gvisor", "terminal-safe-output")
def test_trace_shows_waiver_and_decisions_safely(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db)
    out = CliRunner().invoke(cli, ["trace", "run-1", "--store", str(db)])
    assert out.exit_code == 0, out.output
    assert "WAIVED" in out.output
    assert "decisions (1)" in out.output
    assert "\x1b" not in out.output
    j = CliRunner().invoke(cli, ["trace", "run-1", "--store", str(db), "--json"])
    assert json.loads(j.output)["decisions"][0]["data"]["kind"] == "deny"


@pytest.mark.guarantee("cli-errors-actionable")
def test_unknown_run_exits_1_with_what_and_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as e:
        main(["trace", "nope", "--store", str(tmp_path / "runs.db")])
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert "no run 'nope'" in err
    assert "fix:" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["runs", "--limit", "0"])
    assert e.value.code == 2


def test_click_exit_codes_propagate_through_main() -> None:
    import click

    from stockade.cli import cli as group

    @group.command(name="_exit_probe", hidden=True)
    def probe() -> None:
        raise click.exceptions.Exit(3)

    try:
        with pytest.raises(SystemExit) as e:
            main(["_exit_probe"])
        assert e.value.code == 3
    finally:
        group.commands.pop("_exit_probe")


def test_stockade_refuses_to_run_with_python_optimisations() -> None:
    import subprocess
    import sys

    r = subprocess.run(
        [sys.executable, "-O", "-m", "stockade", "runs", "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert r.returncode == 2
    assert "refusing to run with Python optimisations" in r.stderr
