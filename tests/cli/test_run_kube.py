"""``stockade run --backend kubernetes``: the egress proxy options (or the policy's
``kubernetes.egress_proxy_image``) reach an allowlist server's render, and OPA's ``task`` and
``secret_access`` questions are asked before launching, as for a local run: a refusal, or an
OPA that cannot answer, refuses the run (recorded) before any secret is read or any cluster
write. The cluster is the in-memory FakeCluster; Rego runs in process (regopy)."""

from __future__ import annotations

import copy
import json
import socket
from pathlib import Path
from typing import Any

import pytest

from kube._helpers import PROXY_DIGEST, PROXY_IP
from kube.test_cli import run_cli
from stockade.kube import Manifest, runtime_class
from stockade.testing import FakeCluster

DIGEST = "sha256:" + "4e" * 32
PROXY = f"ghcr.io/acme/stockade@{PROXY_DIGEST}"
REGO = """\
package stockade
import rego.v1

task.decision := {"result": "allow", "reason": "acme images only"} if {
    startswith(input.extra.workload, "ghcr.io/acme/web@")
    input.image_digest == "%(digest)s"
} else := {"result": "deny", "reason": "only the acme web image may run"}

secret_access.decision := {"result": "allow", "reason": "the web token"} if {
    input.extra.secret == "WEB_TOKEN"  # pragma: allowlist secret
} else := {
    "result": "deny",
    "reason": sprintf("secret %%s is not for %%s", [input.extra.secret, input.server]),
}
"""


class Recording(FakeCluster):
    """A FakeCluster that keeps every object created (the run deletes them again)."""

    def __init__(self) -> None:
        super().__init__(daemonsets={"kube-system": ("cilium",)})
        self.created: list[Manifest] = []

    def create(self, obj: Manifest) -> None:
        super().create(obj)
        self.created.append(copy.deepcopy(obj))


def _policy(tmp_path: Path, *, secrets: str = "[]", opa: str = "", proxy: bool = False) -> Path:
    text = (
        "version: 1\ndefault: deny\nregistries: [ghcr.io/acme/*]\n"
        "servers:\n"
        f"  - name: web\n    image: ghcr.io/acme/web@{DIGEST}\n"
        "    network: {mode: allowlist, domains: [api.example.com]}\n"
        f"    secrets: {secrets}\n"
    )
    if proxy:
        text += f"kubernetes:\n  egress_proxy_image: {PROXY}\n"
    if opa:
        (tmp_path / "rego").mkdir(exist_ok=True)
        (tmp_path / "rego" / "authz.rego").write_text(REGO % {"digest": DIGEST})
        text += opa
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


REGOPY = "opa:\n  mode: regopy\n  modules: [rego/authz.rego]\n  delegate: [task, secret_access]\n"


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Recording:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    fake = Recording()
    fake.put(runtime_class())
    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: fake)
    monkeypatch.setattr("stockade.cli._k8s._wait", lambda s: _finish_pods(fake))
    # The registry side of the supply-chain gate, replaced by its result: the gate itself runs
    # for real in tests/kube/test_gateway_kube_signed.py and tests/kube/test_cli_evidence.py.
    ok = (DIGEST, {"reference": f"ghcr.io/acme/web@{DIGEST}", "digest": DIGEST})
    monkeypatch.setattr("stockade.cli._k8s._verify_image", lambda *a: (ok[0], dict(ok[1])))
    return fake


def _finish_pods(fake: FakeCluster) -> None:
    done = {"containerStatuses": [{"name": "server", "state": {"terminated": {"exitCode": 0}}}]}
    for ref, obj in fake.objects.items():
        if ref.kind == "Pod":
            obj["status"] = {"phase": "Succeeded", **done}


def _run(policy: Path, *extra: str) -> int:
    argv = ["run", "--backend", "kubernetes", "--policy", str(policy), "--server", "web"]
    return run_cli([*argv, "--timeout", "30", *extra])


def _proxy_image(fake: Recording) -> str:
    (dep,) = [o for o in fake.created if o["kind"] == "Deployment"]
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def _records(tmp_path: Path) -> list[Any]:
    from stockade.store import RunStore

    with RunStore.open(tmp_path / "home" / "runs.db") as runs:
        return [(r, [e.kind for e in runs.evidence(r.run_id)]) for r in runs.list()]


def _opa_events(tmp_path: Path) -> list[tuple[str, str]]:
    lines = (tmp_path / "home" / "audit" / "audit.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    return [
        (e["data"]["question"], e["data"]["result"])
        for e in events
        if e.get("type") == "opa_decision"
    ]


# -- the egress proxy -----------------------------------------------------------------------------


@pytest.mark.guarantee("k8s-egress-proxy-rendered")
def test_an_allowlist_server_runs_with_the_proxy_options_passed_through(
    tmp_path: Path, cluster: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(_policy(tmp_path), "--egress-proxy-ip", PROXY_IP, "--egress-proxy-image", PROXY)
    assert code == 0, capsys.readouterr().err
    assert _proxy_image(cluster) == PROXY
    (svc,) = [o for o in cluster.created if o["kind"] == "Service"]
    assert svc["spec"]["clusterIP"] == PROXY_IP
    assert [r.kind for r in cluster.objects] == ["RuntimeClass"]  # the run was rolled back


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
def test_the_policy_setting_supplies_the_proxy_image_to_stockade_run(
    tmp_path: Path, cluster: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(_policy(tmp_path, proxy=True), "--egress-proxy-ip", PROXY_IP) == 0, (
        capsys.readouterr().err
    )
    assert _proxy_image(cluster) == PROXY


@pytest.mark.guarantee("k8s-refuse-unappliable")
def test_an_allowlist_server_without_a_proxy_image_is_refused_and_recorded_before_any_write(
    tmp_path: Path, cluster: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(_policy(tmp_path), "--egress-proxy-ip", PROXY_IP) != 0
    assert "needs the egress proxy's image" in capsys.readouterr().err
    assert cluster.calls == []
    ((rec, _),) = _records(tmp_path)
    assert (rec.status.value, rec.server, rec.image_digest) == ("refused", "web", DIGEST)


def test_the_proxy_options_are_refused_without_the_kubernetes_backend(
    tmp_path: Path, cluster: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--policy", str(_policy(tmp_path)), "--server", "web"]
    assert run_cli([*argv, "--egress-proxy-ip", PROXY_IP]) != 0
    assert "need --backend kubernetes" in capsys.readouterr().err
    assert cluster.calls == []


# -- OPA's task and secret_access -----------------------------------------------------------------


@pytest.mark.guarantee("k8s-run-opa-questions")
def test_a_task_opa_allows_runs_after_opa_was_asked(
    tmp_path: Path, cluster: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = _policy(tmp_path, opa=REGOPY, proxy=True)
    assert _run(policy, "--egress-proxy-ip", PROXY_IP) == 0, capsys.readouterr().err
    assert _opa_events(tmp_path) == [("task", "allow")]
    assert [o["kind"] for o in cluster.created][-1] == "Pod"


@pytest.mark.guarantee("k8s-run-opa-questions")
@pytest.mark.parametrize(
    "case",
    [
        (
            'startswith(input.extra.workload, "ghcr.io/acme/web@")',
            "[]",
            "only the acme web image may run",
            [("task", "deny")],
        ),
        (
            None,
            "[ROOT_TOKEN]",
            "secret ROOT_TOKEN is not for web",
            [("task", "allow"), ("secret_access", "deny")],
        ),
    ],
)
def test_a_task_or_secret_opa_refuses_is_refused_before_any_secret_read_or_cluster_write(
    tmp_path: Path,
    cluster: Recording,
    capsys: pytest.CaptureFixture[str],
    case: tuple[str | None, str, str, list[tuple[str, str]]],
) -> None:
    rego, secrets, why, asked = case
    policy = _policy(tmp_path, opa=REGOPY, proxy=True, secrets=secrets)
    if rego is not None:  # this run's workload no longer matches the allow rule
        module = tmp_path / "rego" / "authz.rego"
        module.write_text(module.read_text().replace(rego, 'input.extra.workload == "none"'))
    assert _run(policy, "--egress-proxy-ip", PROXY_IP) != 0
    err = capsys.readouterr().err
    assert why in err  # not "secret not found": OPA is asked before the secret store is read
    assert cluster.calls == []
    ((rec, kinds),) = _records(tmp_path)
    assert (rec.status.value, rec.server, rec.image_digest) == ("refused", "web", DIGEST)
    assert kinds == ["sandbox.refused"]
    assert _opa_events(tmp_path) == asked


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


@pytest.mark.guarantee("k8s-run-opa-questions")
def test_an_opa_server_that_cannot_answer_refuses_the_run(
    tmp_path: Path, cluster: Recording, capsys: pytest.CaptureFixture[str]
) -> None:
    opa = (
        f"opa:\n  mode: url\n  url: http://127.0.0.1:{_closed_port()}\n"
        "  delegate: [task]\n  timeout_s: 2\n"
    )
    assert _run(_policy(tmp_path, opa=opa, proxy=True), "--egress-proxy-ip", PROXY_IP) != 0
    err = capsys.readouterr().err
    assert "OPA could not decide (OPA server unreachable" in err
    assert "(task: deny)" in err
    assert cluster.calls == []
    ((rec, _),) = _records(tmp_path)
    assert rec.status.value == "refused"
