from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli


def test_demo_without_the_gateway_meets_every_expectation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "unused"))
    home = tmp_path / "demo"
    out = CliRunner().invoke(cli, ["demo", "--home", str(home), "--no-gateway"])
    assert out.exit_code == 0, out.output
    assert "expectations met" in out.output
    assert "FAIL" not in out.output
    assert (home / "audit" / "audit.jsonl").is_file()
    # running again reuses (wipes) its own scratch directory
    again = CliRunner().invoke(cli, ["demo", "--home", str(home), "--no-gateway"])
    assert again.exit_code == 0, again.output


@pytest.mark.gvisor
@pytest.mark.node
@pytest.mark.slow
@pytest.mark.guarantee("demo-gateway-end-to-end")
def test_the_readme_demo_runs_real_servers_in_gvisor_behind_the_gateway(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if shutil.which("runsc") is None or os.geteuid() != 0 or shutil.which("npm") is None:
        pytest.skip("GVISOR/NPM MISSING: needs root, runsc and npm; run scripts/bootstrap as root")
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "unused"))
    home = tmp_path / "demo"
    r = subprocess.run(
        [sys.executable, "-m", "stockade", "demo", "--home", str(home)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
    for shown in ("allowed  everything__echo", "denied   everything__get-env", "rug pull"):
        assert shown in r.stdout
    assert "$ stockade trace" in r.stdout


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
