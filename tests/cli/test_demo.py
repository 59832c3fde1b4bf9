from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli


def test_demo_meets_every_expectation_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "unused"))
    home = tmp_path / "demo"
    out = CliRunner().invoke(cli, ["demo", "--home", str(home)])
    assert out.exit_code == 0, out.output
    assert "expectations met" in out.output
    assert "FAIL" not in out.output
    assert (home / "audit" / "audit.jsonl").is_file()
    # running again reuses (wipes) its own scratch directory
    again = CliRunner().invoke(cli, ["demo", "--home", str(home)])
    assert again.exit_code == 0, again.output


def test_demo_refuses_to_wipe_a_directory_it_did_not_create(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "unused"))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    out = CliRunner().invoke(cli, ["demo", "--home", str(precious)])
    assert out.exit_code != 0
    assert (precious / "keep.txt").read_text() == "mine"
