"""cgroup v2 live: limits applied and enforced on a v2-only kernel (plain processes, then bwrap).

The runner's accounting only needs the workload's processes inside the run's group: the plain
process tests join it the way the bwrap launch chain does (``echo $$ > cgroup.procs && exec``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.errors import SandboxError
from stockade.models import EndReason, Runtime, SandboxSpec
from stockade.sandbox import cgroup_root, cgroup_v1_root, find_bwrap, find_gvisor, launch
from stockade.sandbox._cgroup import Cgroup, open_cgroup
from stockade.sandbox._cgroup_v2 import CgroupV2

from .conftest import V2

pytestmark = pytest.mark.cgroupv2vm
PY = sys.executable
BOUND_S = 300.0  # TCG is slow; every wait is bounded by this


@pytest.fixture
def cg() -> Iterator[CgroupV2]:
    group = open_cgroup(cgroup_root(), f"t-{uuid.uuid4().hex[:12]}")
    assert isinstance(group, CgroupV2)
    yield group
    group.remove()


def join_and_run(cg: Cgroup, code: str) -> subprocess.Popen[str]:
    (procs,) = cg.procs_files()
    argv = ["/bin/sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "join", str(procs),
            PY, "-c", code]  # fmt: skip
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert cg.wait_joined(p.pid, lambda: p.poll() is not None, bound_s=BOUND_S)
    return p


@pytest.mark.guarantee("sandbox-cgroup-detect")
def test_a_v2_only_host_is_detected_as_v2_and_v1_is_refused() -> None:
    assert cgroup_root() == V2
    with pytest.raises(SandboxError, match="is not mounted"):
        cgroup_v1_root()


@pytest.mark.guarantee("sandbox-cgroup-v2-limits")
def test_the_run_group_gets_memory_swap_pids_and_cpu_limits(cg: CgroupV2) -> None:
    cg.create(memory_bytes=48 << 20, host_pids=32, cpu_quota_us=50_000)
    for parent in (V2, V2 / "stockade"):
        enabled = set((parent / "cgroup.subtree_control").read_text().split())
        assert {"memory", "pids", "cpu"} <= enabled
    assert (cg.dir / "memory.max").read_text().strip() == str(48 << 20)
    assert (cg.dir / "memory.swap.max").read_text().strip() == "0"
    assert (cg.dir / "pids.max").read_text().strip() == "32"
    assert (cg.dir / "cpu.max").read_text().strip() == "50000 100000"


@pytest.mark.guarantee("sandbox-cgroup-v2-limits")
def test_a_limit_the_kernel_rejects_refuses(cg: CgroupV2) -> None:
    with pytest.raises(SandboxError, match=r"cannot set cgroup limit pids.max=-5"):
        cg.create(memory_bytes=48 << 20, host_pids=-5, cpu_quota_us=50_000)


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-memory-limit")
def test_a_memory_bomb_is_oom_killed_and_counted_in_memory_events(cg: CgroupV2) -> None:
    cg.create(memory_bytes=32 << 20, host_pids=32, cpu_quota_us=100_000)
    bomb = "chunks = []\nwhile True:\n    chunks.append(bytearray(b'x') * (4 << 20))\n"
    p = join_and_run(cg, bomb)
    p.communicate(timeout=BOUND_S)
    assert p.returncode == -signal.SIGKILL
    usage = cg.usage()
    assert usage.oom_kills >= 1
    assert usage.memory_failcnt >= 1
    assert usage.memory_bytes <= 32 << 20


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-cpu-limit")
def test_a_cpu_loop_past_its_budget_is_seen_in_cpu_stat(cg: CgroupV2) -> None:
    cg.create(memory_bytes=64 << 20, host_pids=32, cpu_quota_us=100_000)
    p = join_and_run(cg, "while True: pass")
    budget_ns = 500_000_000
    end = time.monotonic() + BOUND_S
    while cg.usage().cpu_ns < budget_ns and time.monotonic() < end:
        time.sleep(0.05)
    assert cg.usage().cpu_ns >= budget_ns
    cg.kill_all()
    p.communicate(timeout=BOUND_S)
    assert p.returncode == -signal.SIGKILL
    assert cg.pids() == []


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-pids-limit")
def test_a_fork_bomb_stops_at_pids_max(cg: CgroupV2) -> None:
    cg.create(memory_bytes=128 << 20, host_pids=16, cpu_quota_us=100_000)
    bomb = """
import os, time
kids = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            os.close(1); os.close(2); time.sleep(600); os._exit(0)
        kids += 1
    print("FORKED", kids)
except OSError as e:
    print("blocked after", kids, e.errno)
"""
    p = join_and_run(cg, bomb)
    out, _ = p.communicate(timeout=BOUND_S)
    assert "FORKED" not in out
    assert int(out.split()[2]) < 16
    assert int(Path(cg.dir / "pids.events").read_text().split()[1]) >= 1
    assert 0 < cg.usage().pids <= 16  # the sleeping children, killed by remove()


def test_remove_kills_the_tree_and_deletes_nested_groups(cg: CgroupV2) -> None:
    cg.create(memory_bytes=64 << 20, host_pids=32, cpu_quota_us=100_000)
    p = join_and_run(cg, "import time; time.sleep(600)")
    (cg.dir / "child").mkdir()  # a runtime may nest groups below the run's
    cg.remove(bound_s=BOUND_S)
    p.communicate(timeout=BOUND_S)
    assert not cg.dir.exists()


def _backend_or_skip(runtime: Runtime) -> None:
    try:
        find_gvisor() if runtime == Runtime.GVISOR else find_bwrap()
    except SandboxError as e:
        pytest.skip(f"{runtime.value.upper()} UNAVAILABLE IN THE VM: {e.what}")


@pytest.mark.parametrize(
    "runtime",
    [
        pytest.param(Runtime.NAMESPACES, marks=pytest.mark.bwrap, id="namespaces"),
        pytest.param(Runtime.GVISOR, marks=pytest.mark.gvisor, id="gvisor"),
    ],
)
@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-cpu-limit", "sandbox-memory-limit")
@pytest.mark.parametrize(
    ("code", "limits", "reason"),
    [
        ("while True: pass", {"cpu_seconds": 0.5}, EndReason.CPU_LIMIT),
        (
            "b = []\nwhile True: b.append(bytearray(8 << 20))",
            # gVisor's own CPU counts in the group: under TCG a 10 s budget can run out first.
            {"memory_mb": 64, "cpu_seconds": 300},
            EndReason.MEMORY_LIMIT,
        ),
        ("print('ok')", {}, EndReason.EXITED),
    ],
    ids=["cpu", "memory", "exits"],
)
def test_the_runner_on_v2_ends_a_run_with_the_right_reason(
    tmp_path: Path, runtime: Runtime, code: str, limits: dict[str, Any], reason: EndReason
) -> None:
    _backend_or_skip(runtime)
    spec = SandboxSpec(argv=("/usr/bin/python3", "-c", code), runtime=runtime,
                       timeout_s=int(BOUND_S), **limits)  # fmt: skip
    sandbox = launch(spec, state=tmp_path)
    assert sandbox.stdout is not None
    assert sandbox.stderr is not None
    out = sandbox.stdout.read().decode(errors="replace")
    err = sandbox.stderr.read().decode(errors="replace")
    outcome = sandbox.wait(timeout=BOUND_S)
    sandbox.stdout.close()
    sandbox.stderr.close()
    assert outcome.end_reason == reason, (outcome, err[-2000:])
    if reason == EndReason.EXITED:
        assert (outcome.exit_code, out) == (0, "ok\n")
    assert not any((V2 / "stockade").glob(sandbox.run_id))
    assert os.path.isdir(V2 / "stockade")
