"""Resource exhaustion: every limit holds and the run ends with the right reason."""

from __future__ import annotations

import pytest

from stockade.models import EndReason

from .conftest import Runner


@pytest.mark.guarantee("sandbox-memory-limit")
def test_a_memory_bomb_is_killed_with_reason_memory_limit(run: Runner) -> None:
    payload = """
chunks = []
while True:
    chunks.append(bytearray(b"x") * (8 * 1024 * 1024))
"""
    r = run(payload, memory_mb=64)
    assert r.outcome.end_reason == EndReason.MEMORY_LIMIT, (r.outcome, r.stderr[-500:])
    assert r.outcome.exit_code != 0


@pytest.mark.guarantee("sandbox-pids-limit")
def test_a_fork_bomb_is_stopped_by_the_process_limit(run: Runner) -> None:
    payload = """
import os, time
kids = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(3); os._exit(0)
        kids += 1
    print("FORKED", kids)
except OSError as e:
    print("blocked after", kids, e.errno)
"""
    r = run(payload, pids=16, memory_mb=512)
    assert "FORKED" not in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("blocked after"))
    assert int(line.split()[2]) < 16


@pytest.mark.guarantee("sandbox-cpu-limit")
def test_a_cpu_loop_past_the_budget_is_killed_with_reason_cpu_limit(run: Runner) -> None:
    r = run("while True: pass", cpu_seconds=0.5, timeout_s=30)
    assert r.outcome.end_reason == EndReason.CPU_LIMIT
    assert r.outcome.cpu_seconds >= 0.5


@pytest.mark.guarantee("sandbox-deadline")
def test_sleeping_past_the_deadline_kills_the_whole_tree(run: Runner) -> None:
    payload = """
import os, time
for _ in range(3):
    if os.fork() == 0:
        time.sleep(120); os._exit(0)
time.sleep(120)
"""
    r = run(payload, timeout_s=1)
    assert r.outcome.end_reason == EndReason.DEADLINE
    assert r.outcome.exit_code != 0


@pytest.mark.guarantee("sandbox-fd-limit")
def test_opening_descriptors_stops_at_the_nofile_limit(run: Runner) -> None:
    payload = """
import os
fds = []
try:
    for _ in range(100000):
        fds.append(os.open("/dev/null", os.O_RDONLY))
    print("OPENED", len(fds))
except OSError as e:
    print("blocked after", len(fds), e.errno)
"""
    r = run(payload)
    assert "OPENED" not in r.stdout
    line = next(x for x in r.stdout.splitlines() if x.startswith("blocked after"))
    assert int(line.split()[2]) <= 256
