"""``stockade gateway --backend kubernetes``: dry run by default; with --apply every image is
verified before any cluster call, then the official MCP SDK client lists and calls a tool of a
server whose "Pod" runs in the in-memory cluster (a real Python MCP server behind the attach
stream, ``_gateway_double.py``), and the gateway's exit leaves only the RuntimeClass behind."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from stockade.kube import runtime_class
from stockade.testing import FakeCluster

from .test_cli import run_cli

DOUBLE = Path(__file__).parent / "_gateway_double.py"
DIGEST = "sha256:" + "5e" * 32
POLICY = """\
version: 1
default: deny
registries: [ghcr.io/acme/*]
servers:
  - name: echo
    image: ghcr.io/acme/echo-mcp:v1
    network: none
    tofu: true
    tools:
      default: deny
      rules:
        - {tool: echo, action: allow, tier: low}
"""


@pytest.fixture
def policy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    return path


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    cluster = FakeCluster(daemonsets={"kube-system": ("cilium",)})
    cluster.put(runtime_class())
    monkeypatch.setattr("stockade.cli._k8s._connect", lambda kubeconfig, context: cluster)
    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: cluster)
    return cluster


def _verified(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry side of the gate replaced by its result (the refusals run it for real)."""
    ev = {"reference": f"ghcr.io/acme/echo-mcp@{DIGEST}", "digest": DIGEST}
    monkeypatch.setattr("stockade.cli._k8s._verify_image", lambda *a: (DIGEST, dict(ev)))


def _gateway(policy: Path, *extra: str) -> int:
    return run_cli(
        ["gateway", "--policy", str(policy), "--stdio", "--backend", "kubernetes", *extra]
    )


@pytest.mark.guarantee("k8s-apply-dry-run-default")
def test_the_kubernetes_gateway_without_apply_prints_the_plan_and_starts_nothing(
    policy: Path,
    fake: FakeCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _verified(monkeypatch)
    assert _gateway(policy) == 0
    out, err = capsys.readouterr()
    assert f"# server echo: image ghcr.io/acme/echo-mcp:v1 -> {DIGEST}" in out
    assert "create  Pod stockade-echo/stockade-" in out
    assert f"+    image: ghcr.io/acme/echo-mcp@{DIGEST}" in out
    assert "no gateway started" in err
    assert fake.calls == []
    assert not (policy.parent / "home" / "runs.db").exists()


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_the_dry_run_on_a_cluster_without_gvisor_names_the_refusal_and_exits_1(
    policy: Path,
    fake: FakeCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _verified(monkeypatch)
    fake.objects.clear()
    assert _gateway(policy) == 1
    err = capsys.readouterr().err
    assert "would refuse: server echo:" in err
    assert "RuntimeClass 'gvisor'" in err


@pytest.mark.guarantee("k8s-gateway-verified-first")
@pytest.mark.parametrize("execute", [False, True])
def test_an_image_no_signature_rule_covers_is_refused_before_any_cluster_call(
    policy: Path, fake: FakeCluster, capsys: pytest.CaptureFixture[str], execute: bool
) -> None:
    code = _gateway(policy, *(["--apply"] if execute else []))
    err = capsys.readouterr().err
    assert code != 0
    assert "verify" in err
    assert fake.calls == []
    assert len(fake.objects) == 1
    if execute:  # the refusal is a recorded run
        from stockade import paths
        from stockade.store import RunStore

        with RunStore.open(paths.run_store()) as runs:
            (rec,) = runs.list()
        assert (rec.status.value, rec.server, rec.backend) == ("refused", "echo", "kubernetes")


@pytest.mark.guarantee("k8s-gateway-verified-first")
def test_an_image_from_an_unlisted_registry_is_refused_before_any_cluster_call(
    policy: Path, fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    policy.write_text(POLICY.replace("image: ghcr.io/acme/", "image: docker.io/evil/"))
    assert _gateway(policy, "--apply") != 0
    assert "docker.io/evil/echo-mcp" in capsys.readouterr().err
    assert fake.calls == []


@pytest.mark.guarantee("k8s-refuse-unappliable")
@pytest.mark.parametrize("execute", [False, True])
def test_a_command_server_cannot_run_on_kubernetes(
    policy: Path,
    fake: FakeCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    execute: bool,
) -> None:
    _verified(monkeypatch)
    policy.write_text(POLICY + "  - name: local\n    command: [/bin/true]\n")
    assert _gateway(policy, *(["--apply"] if execute else [])) == 1
    err = capsys.readouterr().err
    assert "server(s) local run a host command" in err
    assert fake.calls == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kubeconfig", "k"], "need --backend kubernetes"),
        (["--apply"], "need --backend kubernetes"),
        (["--egress-namespace", "other"], "need --backend kubernetes"),
        (["--backend", "kubernetes", "--unsafe-no-sandbox"], "always sandboxed"),
    ],
)
def test_kubernetes_options_are_refused_where_they_would_be_ignored(
    policy: Path,
    fake: FakeCluster,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    assert run_cli(["gateway", "--policy", str(policy), "--stdio", *argv]) != 0
    assert message in capsys.readouterr().err
    assert fake.calls == []


async def _session(tmp_path: Path, policy: Path, state: Path) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable,
        args=[
            str(DOUBLE),
            str(state),
            "--verified",
            DIGEST,
            "--",
            "gateway",
            "--policy",
            str(policy),
            "--stdio",
            "--backend",
            "kubernetes",
            "--apply",
        ],
        env={"STOCKADE_HOME": str(tmp_path / "home"), "PATH": os.environ.get("PATH", "")},
    )
    async with Client(params, read_timeout_seconds=30) as client:
        before = await client.call_tool("stockade__get_run_trace", {})
        tools = [t.name for t in (await client.list_tools()).tools]
        echo = await client.call_tool("echo__echo", {"message": "from a pod"})
        after = await client.call_tool("stockade__get_run_trace", {})
    return {"tools": tools, "echo": echo, "before": before, "after": after}


@pytest.mark.guarantee("k8s-attach-mcp")
@pytest.mark.guarantee("k8s-gateway-verified-first")
def test_the_mcp_sdk_client_calls_a_tool_of_a_server_running_as_a_pod_behind_the_gateway(
    tmp_path: Path, policy: Path
) -> None:
    state = tmp_path / "state"
    state.mkdir()
    seen = asyncio.run(asyncio.wait_for(_session(tmp_path, policy, state), 60))
    assert "echo__echo" in seen["tools"]
    assert "Echo: from a pod" in seen["echo"].content[0].text
    unlaunched = seen["before"].structured_content["servers"]["echo"]
    assert unlaunched == {
        "sandbox": "not launched yet: its gVisor Pod is created at its first launch"
    }
    launched = seen["after"].structured_content["servers"]["echo"]
    assert launched["run"]["backend"] == "kubernetes"
    created = [json.loads(line) for line in (state / "created.jsonl").read_text().splitlines()]
    (pod,) = [o for o in created if o["kind"] == "Pod"]
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    assert pod["spec"]["containers"][0]["image"] == f"ghcr.io/acme/echo-mcp@{DIGEST}"
    assert [o["kind"] for o in json.loads((state / "final.json").read_text())] == ["RuntimeClass"]
    from stockade.store import RunStore

    with RunStore.open(tmp_path / "home" / "runs.db") as runs:
        (rec,) = runs.list()
        kinds = [e.kind for e in runs.evidence(rec.run_id)]
    assert (rec.backend, rec.server, rec.image_digest) == ("kubernetes", "echo", DIGEST)
    assert rec.status.value == "killed"  # stopped by the gateway at exit; Pod deleted
    assert kinds[:2] == ["verification", "image"]
    assert "k8s" in kinds


async def _session_real_client(
    tmp_path: Path, policy: Path, kubeconfig: Path, *extra: str, verified: str | None = DIGEST
) -> dict[str, Any]:
    """``stockade gateway --backend kubernetes --apply --kubeconfig`` (plus ``extra``) driven by
    the MCP SDK client; ``verified=None`` runs the real supply-chain gate."""
    args = [str(DOUBLE), str(tmp_path / "state"), *(["--verified", verified] if verified else [])]
    args += ["--", "gateway", "--policy", str(policy), "--stdio", "--backend", "kubernetes"]
    args += ["--apply", "--kubeconfig", str(kubeconfig), *extra]
    env = {
        "STOCKADE_HOME": str(tmp_path / "home"),
        "PATH": os.environ.get("PATH", ""),
        "TMPDIR": str(tmp_path),  # the client's discovery cache
    }
    params = StdioServerParameters(command=sys.executable, args=args, env=env)
    async with Client(params, read_timeout_seconds=30) as client:
        tools = [t.name for t in (await client.list_tools()).tools]
        echo = await client.call_tool("echo__echo", {"message": "over the websocket"})
    return {"tools": tools, "echo": echo}


@pytest.mark.guarantee("k8s-attach-mcp")
def test_one_command_serves_a_pod_through_the_real_client_and_attach_websocket(
    tmp_path: Path, policy: Path
) -> None:
    from ._api_double import ApiServerDouble, serve
    from .test_client_adapter import SDK_ECHO, daemonset

    (tmp_path / "state").mkdir()
    d = ApiServerDouble()
    d.put(runtime_class())
    d.put(daemonset("cilium"))
    d.run_pods = True
    d.attach_argv = [sys.executable, str(SDK_ECHO)]
    before = set(d.objects)
    with serve(d, tmp_path) as kubeconfig:
        seen = asyncio.run(asyncio.wait_for(_session_real_client(tmp_path, policy, kubeconfig), 60))
    assert "echo__echo" in seen["tools"]
    assert "Echo: over the websocket" in seen["echo"].content[0].text
    ((path, _, _),) = d.attaches
    assert path.startswith("/api/v1/namespaces/stockade-echo/pods/stockade-")
    (pod,) = [o for o in d.created if o["kind"] == "Pod"]
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    assert pod["spec"]["containers"][0]["image"] == f"ghcr.io/acme/echo-mcp@{DIGEST}"
    assert set(d.objects) == before  # the gateway's exit rolled the run back


ALLOWLIST = POLICY.replace(
    "    network: none\n", "    network:\n      mode: allowlist\n      domains: [api.example.com]\n"
)


@pytest.mark.guarantee("k8s-refuse-unappliable")
@pytest.mark.guarantee("k8s-egress-proxy-rendered")
def test_an_allowlist_server_plans_the_egress_proxy_and_is_refused_without_its_image(
    policy: Path,
    fake: FakeCluster,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _verified(monkeypatch)
    policy.write_text(ALLOWLIST)
    assert _gateway(policy, "--egress-proxy-ip", "10.96.0.50") == 1
    assert (
        "would refuse: server echo: network profile 'allowlist' needs the egress proxy's image"
        in (capsys.readouterr().err)
    )
    proxy = "ghcr.io/acme/stockade@sha256:" + "7e" * 32
    assert _gateway(policy, "--egress-proxy-ip", "10.96.0.50", "--egress-proxy-image", proxy) == 0
    out = capsys.readouterr().out
    assert "create  Deployment stockade-egress/stockade-egress-proxy" in out
    assert "create  ConfigMap stockade-egress/stockade-egress-allowlists" in out
    assert fake.calls == []
