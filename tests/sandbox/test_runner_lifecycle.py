"""Accounting, stdio attach, operator kill and reaping, against the real backends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.models import EndReason, RunStatus, Runtime, SandboxSpec
from stockade.sandbox import (
    Sandbox,
    find_bwrap,
    find_gvisor,
    launch,
    reap_leftovers,
    start_recorded,
)
from stockade.store import RunStore

from .test_refusal import ListSink


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def _skip_unless(rt: Runtime) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor() if rt == Runtime.GVISOR else find_bwrap()
    except SandboxError as e:
        pytest.skip(f"BACKEND {rt.value} UNAVAILABLE: {e.what}")


BACKENDS = [
    pytest.param(Runtime.GVISOR, marks=pytest.mark.gvisor, id="gvisor"),
    pytest.param(Runtime.NAMESPACES, marks=pytest.mark.bwrap, id="namespaces"),
]


@pytest.fixture(params=BACKENDS)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    rt: Runtime = request.param
    _skip_unless(rt)
    return rt


def _drain(sb: Sandbox) -> None:
    for s in (sb.stdout, sb.stderr):
        if s is not None:
            s.read()
            s.close()


@pytest.mark.guarantee("sandbox-run-accounted")
def test_a_run_is_recorded_from_pending_to_exited_with_its_code_and_audited(
    runtime: Runtime, tmp_path: Path
) -> None:
    sink = ListSink()
    with RunStore.open(tmp_path / "runs.db") as store:
        spec = SandboxSpec(argv=("/bin/sh", "-c", "exit 3"), runtime=runtime)
        h = start_recorded(spec, state=tmp_path / "st", clock=FixedClock(), store=store, audit=sink)
        _drain(h.sandbox)
        outcome, record = h.wait(timeout=60)
        assert outcome.exit_code == 3
        assert outcome.end_reason == EndReason.EXITED
        assert record is not None
        assert record.status == RunStatus.EXITED
        assert record.exit_code == 3
        assert record.backend == runtime.value
        assert record.spec["read_only_root"] is True
        kinds = [e.kind for e in store.evidence(h.run_id)]
        assert "sandbox.outcome" in kinds
        assert ("sandbox.waiver" in kinds) == (runtime == Runtime.NAMESPACES)
    types = [t for t, _, _ in sink.events]
    assert types == ["sandbox.launched", "sandbox.ended"]
    launched = sink.events[0][1]
    assert launched.get("gvisor_waived", False) == (runtime == Runtime.NAMESPACES)


@pytest.mark.guarantee("sandbox-run-accounted")
def test_a_refused_launch_is_recorded_as_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    spec = SandboxSpec(argv=("/bin/true",), rootfs="/var/lib/some-image-rootfs")
    with RunStore.open(tmp_path / "runs.db") as store:
        with pytest.raises(SandboxError):
            start_recorded(spec, state=tmp_path / "st", clock=FixedClock(), store=store)
        (record,) = store.list()
        assert record.status == RunStatus.REFUSED
        assert record.end_reason == EndReason.REFUSED


def test_the_stdio_attach_mode_speaks_over_the_workloads_stdin_and_stdout(
    runtime: Runtime, tmp_path: Path
) -> None:
    echo = "import sys\nfor line in sys.stdin:\n    print('echo', line.strip(), flush=True)"
    spec = SandboxSpec(argv=("/usr/bin/python3", "-c", echo), runtime=runtime)
    sb = launch(spec, state=tmp_path, stdin=subprocess.PIPE)
    assert sb.stdin is not None
    assert sb.stdout is not None
    sb.stdin.write(b'{"jsonrpc": "2.0"}\n')
    sb.stdin.flush()
    assert sb.stdout.readline() == b'echo {"jsonrpc": "2.0"}\n'
    sb.stdin.close()
    _drain(sb)
    assert sb.wait(timeout=60).exit_code == 0


@pytest.mark.guarantee("sandbox-deadline")
def test_an_operator_kill_stops_the_tree_and_is_recorded_as_such(
    runtime: Runtime, tmp_path: Path
) -> None:
    spec = SandboxSpec(argv=("/bin/sh", "-c", "sleep 100 & sleep 100"), runtime=runtime)
    sb = launch(spec, state=tmp_path)
    sb.kill()
    _drain(sb)
    outcome = sb.wait(timeout=60)
    assert outcome.end_reason == EndReason.KILLED_BY_OPERATOR
    assert outcome.status == RunStatus.KILLED
    assert not Path(f"/sys/fs/cgroup/pids/stockade/{sb.run_id}").exists()


CRASHING_RUNNER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from stockade.models import Runtime, SandboxSpec
from stockade.sandbox import start_recorded
from stockade.store import RunStore

class Clock:
    def now(self):
        return datetime.now(UTC)

store = RunStore.open(Path(sys.argv[1]))
spec = SandboxSpec(argv=("/bin/sleep", "300"), runtime=Runtime(sys.argv[3]), timeout_s=600)
h = start_recorded(spec, state=Path(sys.argv[2]), clock=Clock(), store=store)
print(h.run_id, flush=True)
time.sleep(600)
"""


@pytest.mark.guarantee("sandbox-reap-leftovers")
def test_leftovers_of_a_killed_runner_are_cleaned_and_marked_lost(
    runtime: Runtime, tmp_path: Path
) -> None:
    db, state = tmp_path / "runs.db", tmp_path / "st"
    runner = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(CRASHING_RUNNER), str(db), str(state), runtime],
        stdout=subprocess.PIPE,
    )
    try:
        assert runner.stdout is not None
        run_id = runner.stdout.readline().decode().strip()
        assert run_id, "the runner did not start a sandbox"
    finally:
        os.kill(runner.pid, signal.SIGKILL)
        runner.wait(timeout=30)
        if runner.stdout is not None:
            runner.stdout.close()
    live = json.loads((state / "live" / f"{run_id}.json").read_text())
    cg = Path(f"/sys/fs/cgroup/pids/stockade/{run_id}")
    assert cg.exists()
    runsc = find_gvisor().runsc if runtime == Runtime.GVISOR else None
    with RunStore.open(db) as store:
        assert reap_leftovers(state, runsc, store) == [run_id]
        record = store.get(run_id)
    assert record.status == RunStatus.LOST
    assert record.end_reason == EndReason.LOST
    assert not cg.exists()
    assert not (state / "live" / f"{run_id}.json").exists()
    assert not Path(live["run_dir"]).exists()
    if runsc is not None:
        r = subprocess.run(
            [runsc, f"--root={live['runsc_root']}", "list", "-quiet"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert live["container_id"] not in r.stdout
