"""``stockade run``: streams output, passes the exit code through, records and audits the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stockade.sandbox
from stockade.errors import SandboxError
from stockade.sandbox import find_gvisor

pytestmark = [pytest.mark.gvisor]


def _stockade(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(home)}
    return subprocess.run(
        [sys.executable, "-m", "stockade", *args],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip


@pytest.fixture
def home(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    return tmp_path / "home"


@pytest.mark.guarantee("sandbox-run-accounted")
def test_run_streams_output_passes_the_exit_code_and_ends_with_the_record(home: Path) -> None:
    r = _stockade(home, "run", "--json", "--", "/bin/sh", "-c", "echo out-line; exit 7")
    assert r.returncode == 7, r.stderr
    assert r.stdout.startswith("out-line\n")
    record = json.loads(r.stdout[len("out-line\n") :])
    assert record["status"] == "exited"
    assert record["exit_code"] == 7
    assert record["backend"] == "gvisor"
    assert f"run {record['run_id']}" in r.stderr
    log = (home / "audit" / "audit.jsonl").read_text()
    assert "sandbox.launched" in log
    assert "sandbox.ended" in log


@pytest.mark.guarantee("sandbox-overrides-only-tighten")
def test_run_refuses_an_override_that_loosens_a_default_limit(home: Path) -> None:
    r = _stockade(home, "run", "--memory-mb", "100000", "--", "/bin/true")
    assert r.returncode != 0
    assert "loosens" in r.stderr


@pytest.mark.guarantee("sandbox-cpu-limit")
def test_run_records_a_cpu_limit_end(home: Path) -> None:
    r = _stockade(
        home, "run", "--json", "--cpu-seconds", "0.3", "--", "/bin/sh", "-c", "while :; do :; done"
    )
    assert r.returncode == 137
    assert json.loads(r.stdout)["end_reason"] == "cpu_limit"


def test_the_public_api_is_curated() -> None:
    assert sorted(stockade.sandbox.__all__) == sorted(
        n for n in vars(stockade.sandbox) if not n.startswith("_") and n != "annotations"
        and not isinstance(getattr(stockade.sandbox, n), type(stockade))
    )  # fmt: skip
