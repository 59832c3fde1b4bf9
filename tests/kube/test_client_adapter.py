"""The real ``kubernetes``-client adapter (``stockade.kube._client``) against ApiServerDouble, a
loopback test double of the few REST calls it makes: discovery, URL building, JSON bodies,
resourceVersion concurrency, 404-as-absent and the mapping of every other failure to KubeError
run for real. What it does not prove: that a real API server admits, defaults or schedules the
objects (see docs/kubernetes.md, "What is verified, and how")."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.kube import (
    KubeError,
    ObjRef,
    PreflightError,
    RecordStore,
    apply_run,
    ref_of,
    rollback_run,
    runtime_class,
)
from stockade.kube._client import KubernetesCluster, connect
from stockade.testing import FakeClock

from ._api_double import ApiServerDouble, serve
from ._helpers import EXAMPLE_POLICY, allowlist, objs_of, one, spec
from .test_cli import run_cli


@pytest.fixture
def double(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[ApiServerDouble, Path]]:
    # the client's discovery cache goes to tempfile.gettempdir(): keep it in this test's dir
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    d = ApiServerDouble()
    d.put(runtime_class())
    d.put(daemonset("calico-node"))
    with serve(d, tmp_path) as kubeconfig:
        yield d, kubeconfig


def daemonset(name: str) -> dict[str, object]:
    labels = {"k8s-app": name}
    container = {"name": name, "image": "registry.example/calico@sha256:" + "0" * 64}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [container]}},
        },
    }


def cluster(kubeconfig: Path) -> KubernetesCluster:
    return connect(str(kubeconfig), None)


def test_get_returns_the_object_and_none_only_for_a_404(
    double: tuple[ApiServerDouble, Path],
) -> None:
    d, kubeconfig = double
    api = cluster(kubeconfig)
    rc = api.get(ObjRef("node.k8s.io/v1", "RuntimeClass", "", "gvisor"))
    assert rc is not None
    assert rc["handler"] == "runsc"
    assert api.get(ObjRef("v1", "Pod", "stockade-tool", "absent")) is None
    path = "/api/v1/namespaces/stockade-tool/pods/broken"
    d.fail[("GET", path)] = 500
    with pytest.raises(KubeError, match="get Pod stockade-tool/broken failed: 500"):
        api.get(ObjRef("v1", "Pod", "stockade-tool", "broken"))


@pytest.mark.guarantee("k8s-rollback-recorded")
def test_an_allowlist_run_is_applied_and_rolled_back_through_the_real_client(
    double: tuple[ApiServerDouble, Path], tmp_path: Path
) -> None:
    d, kubeconfig = double
    before = set(d.objects)
    api = cluster(kubeconfig)
    objs = objs_of(spec(network=allowlist()), run_id="r1")
    store = RecordStore(tmp_path / "records")
    res = apply_run(
        api, objs, execute=True, store=store, clock=FakeClock(), server="tool", run_id="r1"
    )
    assert res.applied
    posts = {p for m, p, _ in d.requests if m == "POST"}
    assert "/apis/networking.k8s.io/v1/namespaces/stockade-tool/networkpolicies" in posts
    assert "/apis/apps/v1/namespaces/stockade-egress/deployments" in posts
    assert "/api/v1/namespaces" in posts
    pod = d.objects[("v1", "pods", "stockade-tool", "stockade-r1")]
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    assert pod["spec"]["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert api.run_ids("stockade-tool") == frozenset({"r1"})
    (_, _, q) = next(r for r in d.requests if r[0] == "GET" and r[1].endswith("/pods"))
    assert q["labelSelector"] == ["stockade.dev/run-id"]
    rollback_run(api, store.latest(), execute=True)
    assert set(d.objects) == before


def test_a_second_run_merges_its_entry_with_the_live_resource_version(
    double: tuple[ApiServerDouble, Path], tmp_path: Path
) -> None:
    d, kubeconfig = double
    api, store = cluster(kubeconfig), RecordStore(tmp_path / "records")
    for rid in ("r1", "r2"):
        objs = objs_of(spec(network=allowlist()), run_id=rid, egress_token=rid * 22)
        apply_run(
            api, objs, execute=True, store=store, clock=FakeClock(), server="tool", run_id=rid
        )
    cm = d.objects[("v1", "configmaps", "stockade-egress", "stockade-egress-allowlists")]
    assert set(cm["data"]) == {"r1", "r2"}
    assert any(
        m == "PUT" and p.endswith("/configmaps/stockade-egress-allowlists")
        for m, p, _ in d.requests
    )


def test_a_stale_replace_is_a_conflict_not_a_lost_update(
    double: tuple[ApiServerDouble, Path],
) -> None:
    _, kubeconfig = double
    api = cluster(kubeconfig)
    ns = one(objs_of(), "Namespace", "namespace")
    api.create(ns)
    live = api.get(ref_of(ns))
    assert live is not None
    stale = {**ns, "metadata": {**ns["metadata"], "resourceVersion": "1"}}
    with pytest.raises(KubeError, match="409"):
        api.replace(stale)
    with pytest.raises(KubeError, match="409"):
        api.create(ns)


def test_a_forbidden_write_becomes_a_kube_error_naming_rbac(
    double: tuple[ApiServerDouble, Path],
) -> None:
    d, kubeconfig = double
    d.fail[("POST", "/api/v1/namespaces")] = 403
    with pytest.raises(KubeError) as err:
        cluster(kubeconfig).create(one(objs_of(), "Namespace", "namespace"))
    assert "403" in err.value.what
    assert "RBAC" in err.value.fix


def test_daemonsets_and_the_log_read_use_the_documented_parameters(
    double: tuple[ApiServerDouble, Path],
) -> None:
    d, kubeconfig = double
    api = cluster(kubeconfig)
    assert api.daemonset_names("kube-system") == ("calico-node",)
    pod = one(objs_of(), "Pod")
    api.create(pod)
    d.logs[("stockade-tool", "stockade-r1")] = "x" * 100 + "tail"
    assert api.pod_log(ref_of(pod), "server", 10) == "xxxxxxtail"
    (_, _, q) = next(r for r in d.requests if r[1].endswith("/log"))
    assert (q["container"], q["limitBytes"]) == (["server"], ["10"])


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_a_cluster_without_gvisor_is_refused_before_any_write_through_the_real_client(
    double: tuple[ApiServerDouble, Path], tmp_path: Path
) -> None:
    d, kubeconfig = double
    d.objects.pop(("node.k8s.io/v1", "runtimeclasses", "", "gvisor"))
    with pytest.raises(PreflightError, match="gvisor"):
        apply_run(
            cluster(kubeconfig), objs_of(), execute=True, store=RecordStore(tmp_path / "r"),
            clock=FakeClock(), server="tool", run_id="r1",
        )  # fmt: skip
    assert not [m for m, _, _ in d.requests if m in ("POST", "PUT", "DELETE")]


@pytest.mark.guarantee("k8s-apply-dry-run-default")
def test_the_cli_plans_applies_and_rolls_back_with_a_kubeconfig(
    double: tuple[ApiServerDouble, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    d, kubeconfig = double
    before = set(d.objects)
    argv = ["k8s", "apply", "--policy", str(EXAMPLE_POLICY), "--server", "docs-search"]
    argv += ["--run-id", "c1", "--kubeconfig", str(kubeconfig)]
    assert run_cli(argv) == 0
    assert "create  Pod stockade-docs-search/stockade-c1" in capsys.readouterr().out
    assert not [m for m, _, _ in d.requests if m in ("POST", "PUT", "DELETE")]
    assert run_cli([*argv, "--apply"]) == 0
    assert ("v1", "pods", "stockade-docs-search", "stockade-c1") in d.objects
    assert run_cli(["k8s", "rollback", "--apply", "--kubeconfig", str(kubeconfig)]) == 0
    assert set(d.objects) == before


def test_an_answer_the_client_models_reject_is_a_kube_error_not_a_crash(
    double: tuple[ApiServerDouble, Path],
) -> None:
    d, kubeconfig = double
    d.put({**daemonset("weird"), "spec": {}})  # no selector or template: the models refuse it
    with pytest.raises(KubeError, match="listing DaemonSets"):
        cluster(kubeconfig).daemonset_names("kube-system")


def test_a_missing_kubeconfig_context_is_a_kube_error(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n")
    with pytest.raises(KubeError, match="kubeconfig"):
        connect(str(kubeconfig), None)


# -- attach: the real websocket (kubernetes.stream + websocket-client) to a real MCP server ------

SDK_ECHO = Path(__file__).resolve().parents[1] / "gateway" / "servers" / "sdk_echo.py"


@pytest.mark.guarantee("k8s-attach-mcp")
def test_the_gateway_session_speaks_mcp_over_the_real_attach_websocket(
    double: tuple[ApiServerDouble, Path], tmp_path: Path
) -> None:
    import asyncio
    import sys

    from stockade.gateway import DownstreamSession, ServerSpec
    from stockade.kube import KubeLauncher
    from stockade.store import RunStore

    d, kubeconfig = double
    d.run_pods = True
    d.attach_argv = [sys.executable, str(SDK_ECHO)]
    before = set(d.objects)
    objs = objs_of(run_id="w1")
    runs = RunStore.open(tmp_path / "runs.db")
    launcher = KubeLauncher(
        cluster(kubeconfig),
        lambda server, rid: objs,
        records=RecordStore(tmp_path / "records"),
        clock=FakeClock(),
        wait=lambda s: None,
        store=runs,
        new_run_id=lambda: "w1",
    )
    session = DownstreamSession(
        ServerSpec(name="tool", command=("in-a-pod",)), launcher, max_message_bytes=1 << 20
    )

    async def go() -> tuple[list[dict[str, object]], dict[str, object]]:
        await asyncio.wait_for(session.start(), 30)
        try:
            tools = await asyncio.wait_for(session.list_tools(), 30)
            result = await asyncio.wait_for(session.call_tool("echo", {"message": "ws"}), 30)
        finally:
            await asyncio.wait_for(session.close(), 30)
        return tools, result

    tools, result = asyncio.run(go())
    assert [t["name"] for t in tools] == ["echo"]
    assert "Echo: ws" in str(result["content"])
    ((path, query, proto),) = d.attaches
    assert path == "/api/v1/namespaces/stockade-tool/pods/stockade-w1/attach"
    assert (query["container"], query["stdin"], query["tty"]) == (["server"], ["true"], ["false"])
    assert proto == "v5.channel.k8s.io"
    assert set(d.objects) == before  # stop rolled the run back through the real client
    assert runs.get("w1").backend == "kubernetes"
    runs.close()


def test_ws_attach_never_closes_the_websocket_while_a_read_is_in_progress() -> None:
    import threading

    from stockade.kube._client import WsAttach

    class Ws:  # a stand-in with WSClient's method names
        def __init__(self) -> None:
            self.reading, self.release = threading.Event(), threading.Event()
            self.in_read = self.overlap = False
            self.open = True

        def is_open(self) -> bool:
            return self.open

        def peek_stdout(self) -> bytes:
            return b""

        def read_stdout(self, timeout: float) -> bytes:
            self.in_read = True
            self.reading.set()
            self.release.wait(5)
            self.in_read = False
            return b"x"

        def close(self) -> None:
            self.overlap = self.in_read
            self.open = False

    ws = Ws()
    attach = WsAttach(ws, io_timeout_s=5)
    reader = threading.Thread(target=attach.read_stdout, args=(0.2,))
    reader.start()
    assert ws.reading.wait(5)
    closer = threading.Thread(target=attach.close)
    closer.start()
    closer.join(0.2)  # give an unserialised close the chance to overlap the read
    ws.release.set()
    closer.join(5)
    reader.join(5)
    assert not ws.overlap
    assert not ws.open
