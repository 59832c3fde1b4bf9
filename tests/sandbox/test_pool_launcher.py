"""The pool launcher: servers whose policy asks ``warm_pool`` get single-use pooled sandboxes."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.gateway._config import ServerSpec
from stockade.policy._schema import ServerPolicy
from stockade.sandbox import find_gvisor
from stockade.sandbox._pool_launcher import PoolLauncher
from stockade.store import RunStore

from .test_refusal import ListSink


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def test_the_policy_accepts_a_bounded_warm_pool_per_server() -> None:
    assert ServerPolicy(name="s", command=("x",), warm_pool=2).warm_pool == 2
    assert ServerPolicy(name="s", command=("x",)).warm_pool == 0
    with pytest.raises(ValueError, match="warm_pool"):
        ServerPolicy(name="s", command=("x",), warm_pool=65)


async def _echo(launcher: PoolLauncher, server: ServerSpec, line: bytes) -> tuple[bytes, str]:
    proc = await launcher.launch(server)
    try:
        await proc.write(line)
        got = await asyncio.wait_for(proc.reader.readline(), 60)
    finally:
        await proc.close()
    return got, launcher.run_ids[server.name]


@pytest.mark.gvisor
@pytest.mark.guarantee("sandbox-pool-single-use")
def test_a_pooled_server_is_served_by_a_fresh_sandbox_each_launch_and_recorded(
    tmp_path: Path,
) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    pooled = ServerSpec(name="echo", command=("/bin/cat",))
    cold = ServerSpec(name="cold", command=("/bin/cat",))
    sink = ListSink()
    with RunStore.open(tmp_path / "runs.db") as store:
        launcher = PoolLauncher(
            state=tmp_path / "st", clock=FixedClock(), sizes={"echo": 1, "cold": 0},
            store=store, audit=sink,
        )  # fmt: skip
        try:
            launcher.prepare([pooled, cold])

            async def go() -> list[tuple[bytes, str]]:
                out = [await _echo(launcher, pooled, b"one\n")]
                # The launch refills in the background; fill() waits for it (same lock).
                await asyncio.to_thread(launcher.fill)
                out.append(await _echo(launcher, pooled, b"two\n"))
                out.append(await _echo(launcher, cold, b"three\n"))
                return out

            results = asyncio.run(go())
        finally:
            launcher.close()
        assert [r[0] for r in results] == [b"one\n", b"two\n", b"three\n"]
        ids = [r[1] for r in results]
        assert len(set(ids)) == 3  # never reused
        for run_id in ids[:2]:
            assert "sandbox.pooled" in [e.kind for e in store.evidence(run_id)]
            assert store.get(run_id).server == "echo"
        assert "sandbox.pooled" not in [e.kind for e in store.evidence(ids[2])]
    launched = [d for t, d, _ in sink.events if t == "sandbox.launched"]
    assert [d.get("pooled", False) for d in launched] == [True, True, False]
    assert not list((tmp_path / "st" / "live").glob("*.json"))


@pytest.mark.guarantee("sandbox-pool-gateway")
def test_a_refill_that_runs_after_close_boots_no_sandbox(tmp_path: Path) -> None:
    """Regression: the refill a launch queues in the background could take the pool's lock after
    the gateway closed the launcher, boot a sandbox into the detached pool and leave it running.
    No runtime is needed: a closed pool must not even try to start one."""
    from stockade.sandbox._pool_launcher import _refill

    server = ServerSpec(name="evil", command=("/bin/cat",))
    launcher = PoolLauncher(state=tmp_path / "state", clock=FixedClock(), sizes={"evil": 2})
    pool = launcher._pool_for(server)
    assert pool is not None
    lock = launcher._locks["evil"]
    launcher.close()
    _refill(lock, pool)  # the queued refill, late
    assert pool.fill() == 0
    assert launcher._pool_for(server) is None  # a closed launcher makes no new pool
    assert not (tmp_path / "state").exists()  # nothing was ever started
