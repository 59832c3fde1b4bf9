"""``stockade run`` honours a stop requested through the control API (``stop_requested``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.sandbox import find_gvisor
from stockade.store import RunStore

pytestmark = [pytest.mark.gvisor]


@pytest.mark.guarantee("cp-run-stop")
def test_a_stop_requested_in_the_store_ends_a_running_cli_run(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    home = tmp_path / "home"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "STOCKADE_HOME": str(home)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stockade", "run", "--timeout", "60", "--", "/bin/sleep", "50"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        run_id = None
        for line in proc.stderr:  # bounded by the run's own 60 s deadline
            m = re.search(r"stockade: run ([0-9a-f]{32}) \(gvisor\)", line)
            if m:
                run_id = m.group(1)
                break
        assert run_id is not None
        with RunStore.open(home / "runs.db") as store:
            store.add_evidence(run_id, "stop_requested", {"by": "operator:carol"})
        rest = proc.stderr.read()
        assert proc.wait(timeout=30) != 0
        assert "killed_by_operator" in rest
        with RunStore.open(home / "runs.db") as store:
            record = store.get(run_id)
        assert record.end_reason is not None
        assert record.end_reason.value == "killed_by_operator"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()
