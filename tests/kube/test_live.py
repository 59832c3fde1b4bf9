"""Against a real cluster: runs only when a kubeconfig is present, otherwise skipped loudly.

Read-only by default (a dry-run plan and the preflight facts). Set STOCKADE_K8S_LIVE_APPLY=1 to
also apply one run of the example policy and roll it back (the test removes what it created).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from stockade.kube import (
    Action,
    PreflightError,
    RecordStore,
    RunParams,
    apply_run,
    render_server,
    rollback_run,
)
from stockade.models import SystemClock

from ._helpers import example_policy

pytestmark = pytest.mark.k8s


def _kubeconfig() -> str | None:
    env = os.environ.get("KUBECONFIG")
    if env and all(Path(p).is_file() for p in env.split(os.pathsep) if p):
        return env.split(os.pathsep)[0]
    default = Path.home() / ".kube" / "config"
    return str(default) if default.is_file() else None


KUBECONFIG = _kubeconfig()
if KUBECONFIG is None:
    pytest.skip(
        "NO KUBERNETES CLUSTER: no kubeconfig (KUBECONFIG or ~/.kube/config); the live-cluster "
        "tests of the Kubernetes backend did not run",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def cluster():  # type: ignore[no-untyped-def]
    from stockade.kube._client import connect

    return connect(KUBECONFIG, os.environ.get("STOCKADE_K8S_CONTEXT"))


def _objs(run_id: str):  # type: ignore[no-untyped-def]
    params = RunParams(run_id=run_id, egress_token=secrets.token_urlsafe(32))
    return render_server(example_policy(), "docs-search", params)


def test_a_dry_run_plan_reads_the_cluster_and_changes_nothing(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = RecordStore(tmp_path)
    res = apply_run(
        cluster,
        _objs("live-dry"),
        execute=False,
        store=store,
        clock=SystemClock(),
        server="docs-search",
        run_id="live-dry",
    )
    assert res.applied is False
    assert store.ids() == ()
    assert any(c.action == Action.PREREQUISITE for c in res.plan.changes)
    print("preflight refusals on this cluster:", res.refusals)


@pytest.mark.skipif(
    os.environ.get("STOCKADE_K8S_LIVE_APPLY") != "1",
    reason="set STOCKADE_K8S_LIVE_APPLY=1 to let this test create and roll back a run",
)
def test_apply_and_rollback_one_run(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = RecordStore(tmp_path)
    run_id = "live-" + secrets.token_hex(4)
    try:
        res = apply_run(
            cluster,
            _objs(run_id),
            execute=True,
            store=store,
            clock=SystemClock(),
            server="docs-search",
            run_id=run_id,
        )
        assert res.record is not None
        assert any(c.ref.kind == "Pod" for c in res.plan.writes)
    except PreflightError as e:
        pytest.skip(f"the cluster lacks a control stockade requires: {e.what}")
    finally:
        if store.ids():  # whatever was written (even by a failed apply) is rolled back
            rollback_run(cluster, store.latest(), execute=True)


@pytest.mark.skipif(
    os.environ.get("STOCKADE_K8S_LIVE_APPLY") != "1",
    reason="set STOCKADE_K8S_LIVE_APPLY=1 to let this test run one Pod end to end",
)
def test_run_one_pod_to_its_end_and_leave_nothing_behind(cluster, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import threading

    from stockade.kube import ref_of, run_pod

    run_id = "live-" + secrets.token_hex(4)
    objs = _objs(run_id)
    stop = threading.Event()

    def wait(seconds: float) -> None:
        stop.wait(min(seconds, 1.0))  # each wait bounded; the run's deadline bounds them all

    try:
        got = run_pod(
            cluster,
            objs,
            store=RecordStore(tmp_path),
            clock=SystemClock(),
            wait=wait,
            server="docs-search",
            run_id=run_id,
            timeout_s=120,
        )
    except PreflightError as e:
        pytest.skip(f"the cluster lacks a control stockade requires: {e.what}")
    assert got.supervised.outcome.ended
    assert got.cleanup.applied
    pod = next(ref_of(o) for o in objs if o["kind"] == "Pod")
    assert cluster.get(pod) is None
    print("live run:", got.supervised.outcome, "log tail:", got.supervised.log[-500:])


MCP_IMAGE = os.environ.get("STOCKADE_K8S_LIVE_MCP_IMAGE")


@pytest.mark.skipif(
    os.environ.get("STOCKADE_K8S_LIVE_APPLY") != "1" or not MCP_IMAGE,
    reason="set STOCKADE_K8S_LIVE_APPLY=1 and STOCKADE_K8S_LIVE_MCP_IMAGE=<an MCP stdio server "
    "image pinned by digest> to attach the gateway's downstream session to a real Pod",
)
def test_the_gateway_launcher_attaches_to_a_real_pod_and_speaks_mcp(  # type: ignore[no-untyped-def]
    cluster, tmp_path: Path
) -> None:
    import asyncio
    import threading

    from stockade.gateway import DownstreamError, DownstreamSession, ServerSpec
    from stockade.kube import KubeLauncher, ref_of
    from stockade.supplychain import parse_reference

    from ._helpers import objs_of

    assert MCP_IMAGE is not None
    run_id = "live-" + secrets.token_hex(4)
    objs = objs_of(image=parse_reference(MCP_IMAGE).pinned(), run_id=run_id)
    stop = threading.Event()
    launcher = KubeLauncher(
        cluster,
        lambda server, rid: objs,
        records=RecordStore(tmp_path),
        clock=SystemClock(),
        wait=lambda s: stop.wait(min(s, 1.0)),
        start_timeout_s=180,
        new_run_id=lambda: run_id,
    )
    session = DownstreamSession(
        ServerSpec(name="tool", command=("in-the-image",)),
        launcher,
        max_message_bytes=1 << 20,
        start_timeout_s=60,
    )

    async def go() -> list[dict[str, object]]:
        try:
            await session.start()
            return await session.list_tools()
        finally:
            await asyncio.wait_for(session.close(), 120)

    try:
        tools = asyncio.run(go())
    except DownstreamError as e:
        if isinstance(e.__cause__, PreflightError):
            pytest.skip(f"the cluster lacks a control stockade requires: {e.__cause__.what}")
        raise
    pod = next(ref_of(o) for o in objs if o["kind"] == "Pod")
    assert cluster.get(pod) is None
    print("live attach: tools", [t.get("name") for t in tools])
