"""The Kubernetes gateway launcher against the FakeCluster: the gateway's real DownstreamSession
speaks MCP (initialize, tools/list, tools/call) through the fake attach stream; refusals, start
timeouts and stderr floods end in a rolled-back cluster and a recorded run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from stockade.gateway import DownstreamError, DownstreamSession, ServerSpec
from stockade.kube import KubeLauncher, Manifest, RecordStore, ref_of, runtime_class
from stockade.models import EndReason, RunStatus
from stockade.store import RunStore
from stockade.testing import FakeClock, FakeCluster
from stockade.testing._kube import FakeAttach

from ._helpers import objs_of, one
from .test_supervise import pending, running

CALICO = {"kube-system": ("calico-node", "kube-proxy")}
MAX_STEPS = 1000


class Harness:
    def __init__(self, tmp: Path, *statuses: Manifest, healthy: bool = True) -> None:
        self.cluster = FakeCluster(daemonsets=dict(CALICO))
        if healthy:
            self.cluster.put(runtime_class())
        self.before = set(self.cluster.objects)
        self.clock = FakeClock()
        self.runs = RunStore.open(tmp / "runs.db")
        self.objs = objs_of(run_id="r1")
        self.pod = ref_of(one(self.objs, "Pod"))
        self.cluster.script[self.pod] = list(statuses)
        self.steps = 0
        self.launcher = KubeLauncher(
            self.cluster,
            lambda server, rid: self.objs,
            records=RecordStore(tmp / "rollback"),
            clock=self.clock,
            wait=self.wait,
            store=self.runs,
            start_timeout_s=10,
            new_run_id=lambda: "r1",
        )

    def wait(self, seconds: float) -> None:
        self.steps += 1
        assert self.steps < MAX_STEPS, "the Pod never changed"
        self.clock.advance(seconds)
        self.cluster.step()

    def session(self) -> DownstreamSession:
        spec = ServerSpec(name="tool", command=("unused-in-a-pod",))
        return DownstreamSession(spec, self.launcher, max_message_bytes=1 << 20)

    def evidence(self) -> dict[str, Any]:
        items = [e for e in self.runs.evidence("r1") if e.kind == "k8s"]
        assert items, "no k8s evidence recorded"
        data: dict[str, Any] = items[-1].data
        return data


async def _bounded(coro: Any) -> Any:
    return await asyncio.wait_for(coro, 10)


@pytest.mark.guarantee("k8s-attach-mcp")
def test_the_gateway_speaks_mcp_to_a_pod_through_attach_and_stop_deletes_everything(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, running())
    h.cluster.attachments[h.pod] = FakeAttach(stderr=b"ready \x1b[31mred\x1b[0m\n")

    async def go() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        s = h.session()
        await _bounded(s.start())
        try:
            tools = await _bounded(s.list_tools())
            result = await _bounded(s.call_tool("echo", {"text": "hello pod"}))
        finally:
            await _bounded(s.close())
        return tools, result

    tools, result = asyncio.run(go())
    assert [t["name"] for t in tools] == ["echo"]
    assert result["content"][0]["text"] == "hello pod"
    assert set(h.cluster.objects) == h.before
    rec = h.runs.get("r1")
    assert rec.backend == "kubernetes"
    assert rec.status == RunStatus.KILLED
    assert rec.end_reason == EndReason.KILLED_BY_OPERATOR
    ev = h.evidence()
    assert "\x1b" not in ev["stderr_tail"]
    assert "ready" in ev["stderr_tail"]
    assert ev["cleanup"]


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_a_cluster_without_gvisor_refuses_the_launch_before_any_write(tmp_path: Path) -> None:
    h = Harness(tmp_path, running(), healthy=False)
    with pytest.raises(DownstreamError, match="could not run as a Pod"):
        asyncio.run(_bounded(h.launcher.launch(ServerSpec(name="tool", command=("x",)))))
    assert not [c for c in h.cluster.calls if c[0] == "create"]
    assert h.runs.get("r1").status == RunStatus.REFUSED


@pytest.mark.guarantee("k8s-run-cleanup")
def test_a_pod_that_never_runs_is_refused_at_the_start_timeout_and_rolled_back(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, *[pending("ImagePullBackOff")] * 50)
    with pytest.raises(DownstreamError, match="not Running after 10s"):
        asyncio.run(_bounded(h.launcher.launch(ServerSpec(name="tool", command=("x",)))))
    assert set(h.cluster.objects) == h.before
    assert h.runs.get("r1").status == RunStatus.FAILED
    assert not [c for c in h.cluster.calls if c[0] == "attach"]


@pytest.mark.guarantee("k8s-attach-bounded")
def test_a_server_flooding_stderr_is_stopped_with_the_reason_recorded(tmp_path: Path) -> None:
    h = Harness(tmp_path, running())
    h.cluster.attachments[h.pod] = FakeAttach(flood_stderr=10 << 20)
    h.launcher._stderr_kill = 1 << 20  # a small ceiling for the test

    async def go() -> None:
        proc = await _bounded(h.launcher.launch(ServerSpec(name="tool", command=("x",))))
        assert await _bounded(proc.reader.read()) == b""  # the stream was ended
        for _ in range(1000):  # bounded: the flood deletes the Pod without waiting for close
            if proc.returncode is not None:
                break
            await asyncio.sleep(0.01)
        assert set(h.cluster.objects) == h.before
        await _bounded(proc.close())

    asyncio.run(go())
    ev = h.evidence()
    assert "stderr flood" in ev["ended_by"]
    assert len(ev["stderr_tail"]) < 80 * 1024
    assert ev["stderr_dropped"] > 0
    assert set(h.cluster.objects) == h.before


@pytest.mark.guarantee("k8s-attach-bounded")
def test_a_server_flooding_stdout_is_held_back_while_the_gateway_does_not_read(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, running())
    fake = FakeAttach(flood_stdout=100 << 20)
    h.cluster.attachments[h.pod] = fake

    async def go() -> None:
        proc = await _bounded(h.launcher.launch(ServerSpec(name="tool", command=("x",))))
        for _ in range(1000):  # bounded: until the reader's flow control paused the pump
            if not proc.reader._transport.is_reading():  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        offered = fake.stdout_offered
        for _ in range(50):  # the pump stays paused while nobody reads
            await asyncio.sleep(0.01)
        assert fake.stdout_offered == offered
        assert offered <= 4 * 65536  # the reader's limit (2 x 64 KiB) and one read
        assert len(await _bounded(proc.reader.read(1 << 20))) > 0  # reading resumes it
        await _bounded(proc.close())

    asyncio.run(go())
    assert set(h.cluster.objects) == h.before


@pytest.mark.guarantee("k8s-run-cleanup")
def test_a_launch_cancelled_while_the_pod_starts_is_rolled_back_when_its_thread_ends(
    tmp_path: Path,
) -> None:
    import threading

    h = Harness(tmp_path, pending(), running())
    entered, gate = threading.Event(), threading.Event()

    def held_wait(seconds: float) -> None:
        entered.set()
        assert gate.wait(10), "the test never released the launch"
        h.wait(seconds)

    h.launcher._wait = held_wait

    async def go() -> None:
        task = asyncio.create_task(h.launcher.launch(ServerSpec(name="tool", command=("x",))))
        assert await asyncio.to_thread(entered.wait, 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        gate.set()
        for _ in range(1000):  # bounded: until the abandoned launch is undone and recorded
            if set(h.cluster.objects) == h.before and h.runs.evidence("r1"):
                break
            await asyncio.sleep(0.01)

    asyncio.run(go())
    assert set(h.cluster.objects) == h.before
    assert h.runs.get("r1").status == RunStatus.KILLED
    assert "cancelled" in h.evidence()["detail"]


def test_writing_to_a_pod_whose_server_exited_is_a_downstream_error(tmp_path: Path) -> None:
    h = Harness(tmp_path, running())
    h.cluster.attachments[h.pod] = FakeAttach(exit_after=1)

    async def go() -> None:
        proc = await _bounded(h.launcher.launch(ServerSpec(name="tool", command=("x",))))
        await proc.write(b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}\n')
        assert b'"echo"' in await _bounded(proc.reader.readline())
        assert await _bounded(proc.reader.read()) == b""
        with pytest.raises(DownstreamError, match="stdin is closed"):
            await proc.write(b"{}\n")
        await _bounded(proc.close())

    asyncio.run(go())
    assert set(h.cluster.objects) == h.before
