"""``stockade k8s render`` and ``stockade k8s policies`` end to end (in-process)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stockade.admission import Level, Verdict, evaluate, load_documents
from stockade.kube import ADMISSION_KINDS, rules_for, runtime_class
from stockade.testing import FakeCluster

from ._helpers import EXAMPLE_POLICY, PROXY_DIGEST, PROXY_IP, REGISTRIES

PROXY_REF = f"ghcr.io/acme/stockade@{PROXY_DIGEST}"


def run_cli(argv: list[str]) -> int:
    from stockade.cli import main

    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def render(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = run_cli(["k8s", "render", "--policy", str(EXAMPLE_POLICY), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def render_github(capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    proxy = ("--egress-proxy-ip", PROXY_IP, "--egress-proxy-image", PROXY_REF)
    return render(capsys, "--server", "github", "--run-id", "c1", *proxy)


@pytest.mark.guarantee("k8s-render-admitted")
def test_render_prints_yaml_that_stockade_admit_loads_and_allows(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = render_github(capsys)
    assert code == 0, err
    docs = load_documents(out, "render.yaml")  # admission's strict loader: no aliases
    objs = [d.obj for d in docs]
    assert [o["kind"] for o in objs][-1] == "Pod"
    rules = rules_for(objs, REGISTRIES)
    for o in objs:
        if o["kind"] in ADMISSION_KINDS:
            assert evaluate(o, Level.STOCKADE, rules, only=None).verdict == Verdict.ALLOW


@pytest.mark.guarantee("k8s-secrets-granted-only")
def test_render_redacts_the_egress_token(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render_github(capsys)
    assert code == 0
    secrets = [o for o in yaml.safe_load_all(out) if o["kind"] == "Secret"]
    assert secrets
    for s in secrets:
        assert set(s["data"].values()) == {"PHJlZGFjdGVkPg=="}


def test_render_generates_a_run_id_when_none_is_given(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render(capsys, "--server", "docs-search")
    assert code == 0
    pod = list(yaml.safe_load_all(out))[-1]
    assert len(pod["metadata"]["labels"]["stockade.dev/run-id"]) == 16


@pytest.mark.guarantee("k8s-refuse-unappliable")
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--server", "github"], "egress-proxy-ip"),
        (["--server", "nope"], "no server"),
        (["--server", "docs-search", "--run-id", "Bad_Id"], "run id"),
        (["--server", "docs-search", "--namespace", "Bad"], "namespace"),
        (["--server", "docs-search", "--digest", "sha256:" + "0" * 64], "differs"),
    ],
)
def test_render_refuses_with_an_error_and_prints_no_manifest(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = render(capsys, *argv)
    assert code != 0
    assert out == ""
    assert message in err


def test_render_refuses_a_host_command_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "version: 1\ndefault: deny\nservers:\n  - name: local\n    command: [/bin/true]\n"
    )
    code = run_cli(["k8s", "render", "--policy", str(policy), "--server", "local"])
    _, err = capsys.readouterr()
    assert code == 1
    assert "host command" in err


def test_render_output_is_ascii(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = render(capsys, "--server", "docs-search", "--run-id", "c1")
    assert code == 0
    assert out.isascii()


@pytest.mark.guarantee("k8s-cluster-policies")
@pytest.mark.parametrize("fmt", ["gatekeeper", "kyverno"])
def test_policies_prints_the_export_with_the_policy_registries(
    capsys: pytest.CaptureFixture[str], fmt: str
) -> None:
    code = run_cli(["k8s", "policies", "--policy", str(EXAMPLE_POLICY), "--format", fmt])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "ghcr.io/acme/*" in out
    assert list(yaml.safe_load_all(out))


def test_policies_refuses_an_invalid_registry_pattern(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["k8s", "policies", "--registry", "*"]) == 2
    assert "registry pattern" in capsys.readouterr().err


# -- apply / rollback (the cluster is the in-memory FakeCluster) ---------------------------------


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakeCluster:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    cluster = FakeCluster(daemonsets={"kube-system": ("cilium",)})
    cluster.put(runtime_class())
    monkeypatch.setattr("stockade.cli._k8s._connect", lambda kubeconfig, context: cluster)
    return cluster


def apply(capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = run_cli(
        [
            "k8s",
            "apply",
            "--policy",
            str(EXAMPLE_POLICY),
            "--server",
            "docs-search",
            "--run-id",
            "a1",
            *extra,
        ]
    )
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.guarantee("k8s-apply-dry-run-default")
def test_apply_without_the_flag_prints_plan_and_diff_and_changes_nothing(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = apply(capsys)
    assert code == 0, err
    assert "create  Pod stockade-docs-search/stockade-a1" in out
    assert "+++ desired: Pod stockade-docs-search/stockade-a1" in out
    assert "nothing was changed" in err
    assert [op for op, _ in fake.calls] == []
    assert len(fake.objects) == 1


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_a_dry_run_on_an_unfit_cluster_exits_nonzero_naming_the_refusal(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.objects.clear()
    code, _, err = apply(capsys)
    assert code == 1
    assert "would refuse" in err
    assert "RuntimeClass 'gvisor'" in err


@pytest.mark.guarantee("k8s-rollback-recorded")
def test_apply_then_rollback_round_trip(
    fake: FakeCluster, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = apply(capsys, "--apply")
    assert code == 0, err
    assert "rollback target:" in out
    assert any(r.kind == "Pod" for r in fake.objects)
    assert run_cli(["k8s", "rollback", "--list"]) == 0
    (record_id,) = capsys.readouterr().out.split()
    assert run_cli(["k8s", "rollback"]) == 0  # dry run
    out, err = capsys.readouterr()
    assert "delete  Pod stockade-docs-search/stockade-a1" in out
    assert any(r.kind == "Pod" for r in fake.objects)
    assert run_cli(["k8s", "rollback", record_id, "--apply"]) == 0
    assert [r.kind for r in fake.objects] == ["RuntimeClass"]


def test_status_reports_the_run_pod(fake: FakeCluster, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "k8s",
        "status",
        "--policy",
        str(EXAMPLE_POLICY),
        "--server",
        "docs-search",
        "--run-id",
        "a1",
    ]
    assert run_cli(argv) == 1  # no Pod: lost
    assert "lost" in capsys.readouterr().out
    apply(capsys, "--apply")
    pod = next(o for r, o in fake.objects.items() if r.kind == "Pod")
    pod["status"] = {"phase": "Failed", "reason": "DeadlineExceeded"}
    assert run_cli(argv) == 1
    assert "killed (deadline)" in capsys.readouterr().out
    pod["status"] = {"phase": "Running"}
    assert run_cli(argv) == 0


# -- run (apply, watch, log, delete) against the FakeCluster -------------------------------------

DOCS_DIGEST = "sha256:4f2e4b9a1c3d5e7f90a1b2c3d4e5f60718293a4b5c6d7e8f9012a3b4c5d6e7f8"


@pytest.mark.guarantee("k8s-run-cleanup")
def test_run_applies_watches_prints_the_log_and_leaves_nothing_behind(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from stockade.kube import ObjRef

    pod = ObjRef("v1", "Pod", "stockade-docs-search", "stockade-r9")
    done = {"containerStatuses": [{"name": "server", "state": {"terminated": {"exitCode": 0}}}]}
    fake.script[pod] = [{"phase": "Running"}, {"phase": "Succeeded", **done}]
    fake.logs[pod] = "hello \x1b]0;evil\x07world\n"
    steps: list[float] = []

    def wait(seconds: float) -> None:
        assert len(steps) < 100
        steps.append(seconds)
        fake.step()

    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: fake)
    monkeypatch.setattr("stockade.cli._k8s._wait", wait)
    # The registry side of the gate is exercised by the supply-chain tests; here it is replaced
    # by its result so the cluster side can be driven (the refusal path below is not replaced).
    ok = (DOCS_DIGEST, {"reference": "ghcr.io/acme/docs-search@x", "digest": "d"})
    monkeypatch.setattr("stockade.cli._k8s._verify_image", lambda *a: ok)
    argv = ["k8s", "run", "--policy", str(EXAMPLE_POLICY), "--server", "docs-search"]
    code = run_cli([*argv, "--run-id", "r9", "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "hello" in out
    assert "world" in out
    assert "\x1b" not in out
    assert "run r9: exited (exited)" in err
    assert [r.kind for r in fake.objects] == ["RuntimeClass"]
    from stockade import paths
    from stockade.store import RunStore

    with RunStore.open(paths.run_store()) as runs:
        rec = runs.get("r9")
        kinds = [e.kind for e in runs.evidence("r9")]
    assert (rec.backend, rec.status.value, rec.exit_code) == ("kubernetes", "exited", 0)
    assert kinds == ["verification", "k8s"]


@pytest.mark.guarantee("k8s-run-image-verified")
def test_run_of_an_image_no_signature_rule_covers_is_refused_and_recorded_before_the_cluster(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: fake)
    argv = ["k8s", "run", "--policy", str(EXAMPLE_POLICY), "--server", "docs-search"]
    assert run_cli([*argv, "--run-id", "r8"]) != 0
    assert "verify" in capsys.readouterr().err
    assert fake.calls == []
    from stockade import paths
    from stockade.store import RunStore

    with RunStore.open(paths.run_store()) as runs:
        (rec,) = runs.list()
    assert rec.status.value == "refused"


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_run_on_a_cluster_without_gvisor_is_refused_before_any_write(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.objects.clear()
    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: fake)
    ok = (DOCS_DIGEST, {"reference": "ghcr.io/acme/docs-search@x", "digest": "d"})
    monkeypatch.setattr("stockade.cli._k8s._verify_image", lambda *a: ok)
    argv = ["k8s", "run", "--policy", str(EXAMPLE_POLICY), "--server", "docs-search"]
    assert run_cli(argv) != 0
    assert "gvisor" in capsys.readouterr().err
    assert fake.objects == {}
    assert [op for op, _ in fake.calls] == []


def test_stockade_run_backend_kubernetes_is_the_same_run(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: fake)
    ok = (DOCS_DIGEST, {"reference": "ghcr.io/acme/docs-search@x", "digest": "d"})
    monkeypatch.setattr("stockade.cli._k8s._verify_image", lambda *a: ok)
    # The Pod name carries a fresh run id: script whichever Pod appears.
    monkeypatch.setattr("stockade.cli._k8s._wait", lambda s: _finish_pods(fake))
    argv = ["run", "--backend", "kubernetes", "--policy", str(EXAMPLE_POLICY)]
    code = run_cli([*argv, "--server", "docs-search", "--timeout", "30"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert ": exited (exited)" in err
    assert [r.kind for r in fake.objects] == ["RuntimeClass"]


def _finish_pods(fake: FakeCluster) -> None:
    done = {"containerStatuses": [{"name": "server", "state": {"terminated": {"exitCode": 0}}}]}
    for ref, obj in fake.objects.items():
        if ref.kind == "Pod":
            obj["status"] = {"phase": "Succeeded", **done}


@pytest.mark.parametrize(
    "extra",
    [["--", "/bin/sh"], ["--rw", "/tmp"], ["--network", "none"], ["--image", "ghcr.io/a/b:1"]],
)
def test_stockade_run_backend_kubernetes_refuses_local_only_options(
    fake: FakeCluster, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", "--backend", "kubernetes", "--policy", str(EXAMPLE_POLICY)]
    assert run_cli([*argv, "--server", "docs-search", *extra]) != 0
    assert "--backend kubernetes" in capsys.readouterr().err
    assert fake.calls == []


@pytest.mark.guarantee("k8s-attach-mcp")
def test_run_interactive_passes_stdin_and_stdout_through_the_pods_attached_stdio(
    fake: FakeCluster, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import io
    import json

    from stockade.kube import ObjRef
    from stockade.testing._kube import FakeAttach

    pod = ObjRef("v1", "Pod", "stockade-docs-search", "stockade-r8")
    done = {"containerStatuses": [{"name": "server", "state": {"terminated": {"exitCode": 0}}}]}
    fake.script[pod] = [{"phase": "Running"}, {"phase": "Succeeded", **done}]
    fake.attachments[pod] = FakeAttach(stderr=b"srv \x1b[31mlog\n", exit_after=1)
    steps: list[float] = []

    def wait(seconds: float) -> None:
        assert len(steps) < 100
        steps.append(seconds)
        fake.step()

    call = {"name": "echo", "arguments": {"text": "via pod"}}
    req = json.dumps({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": call}).encode()
    req += b"\n"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(req)))
    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: fake)
    monkeypatch.setattr("stockade.cli._k8s._wait", wait)
    ok = (DOCS_DIGEST, {"reference": "ghcr.io/acme/docs-search@x", "digest": "d"})
    monkeypatch.setattr("stockade.cli._k8s._verify_image", lambda *a: ok)
    argv = ["k8s", "run", "-i", "--policy", str(EXAMPLE_POLICY), "--server", "docs-search"]
    code = run_cli([*argv, "--run-id", "r8", "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"id": 7' in out
    assert "via pod" in out
    assert "srv" in err
    assert "\x1b" not in err
    assert [r.kind for r in fake.objects] == ["RuntimeClass"]
    assert bytes(fake.attachments[pod].written) == req
    from stockade import paths
    from stockade.store import RunStore

    with RunStore.open(paths.run_store()) as runs:
        ev = next(e.data for e in runs.evidence("r8") if e.kind == "k8s")
    assert ev["attach"]["stdin_bytes"] == len(req)
    assert ev["attach"]["stderr_dropped"] == 0
