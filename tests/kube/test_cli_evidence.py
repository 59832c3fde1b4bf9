"""``stockade k8s run`` records the image evidence a local image run records (verification with
provenance, image, SBOM), against a real loopback registry and the in-memory FakeCluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.kube import ObjRef, runtime_class
from stockade.supplychain import RegistryClient, push_signature
from stockade.testing import FakeCluster
from supplychain.conftest import registry
from supplychain.fakelog import FakeFulcio, FakeLog
from supplychain.images import push_image
from supplychain.test_run_image import ISSUER, _keyless_layer

pytestmark = [pytest.mark.registry]
__all__ = ["registry"]  # the session-scoped loopback registry fixture, reused


def run_cli(argv: list[str]) -> int:
    from stockade.cli import main

    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def write_policy(tmp_path: Path, registry: str, image: str, ca: FakeFulcio, log: FakeLog) -> Path:
    (tmp_path / "trusted_root.json").write_bytes(ca.trusted_root(log))
    f = tmp_path / "policy.yaml"
    f.write_text(
        "version: 1\ndefault: deny\n"
        f"registries: ['{registry}/keyless/*']\n"
        "signatures:\n"
        "  trusted_root: trusted_root.json\n"
        "  rules:\n    - name: ci\n      identities:\n"
        f"        - {{subject: dev@acme.example, issuer: '{ISSUER}'}}\n"
        "servers:\n"
        f"  - name: app\n    image: {image}\n    verify: [ci]\n"
    )
    return f


@pytest.mark.guarantee("k8s-run-image-verified")
@pytest.mark.guarantee("k8s-run-image-evidence")
def test_k8s_run_records_verification_image_and_sbom_evidence_like_a_local_image_run(
    registry: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ca, log = FakeFulcio(), FakeLog()
    with RegistryClient(plain_http=(registry,)) as client:
        ref, _ = push_image(client, f"{registry}/keyless/app", "v1", {"etc/hello": b"hi"})
        push_signature(client, ref, _keyless_layer(ca, log, ref, "dev@acme.example"))
    policy = write_policy(tmp_path, registry, str(ref), ca, log)

    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    cluster = FakeCluster(daemonsets={"kube-system": ("cilium",)})
    cluster.put(runtime_class())
    pod = ObjRef("v1", "Pod", "stockade-app", "stockade-e1")
    done = {"containerStatuses": [{"name": "server", "state": {"terminated": {"exitCode": 0}}}]}
    cluster.script[pod] = [{"phase": "Running"}, {"phase": "Succeeded", **done}]
    cluster.logs[pod] = "ok\n"
    steps: list[float] = []

    def wait(seconds: float) -> None:
        assert len(steps) < 100  # bounded
        steps.append(seconds)
        cluster.step()

    monkeypatch.setattr("stockade.cli._k8s._connect_run", lambda kubeconfig, context: cluster)
    monkeypatch.setattr("stockade.cli._k8s._wait", wait)
    argv = ["k8s", "run", "--policy", str(policy), "--server", "app", "--run-id", "e1",
            "--timeout", "30", "--plain-http", registry]  # fmt: skip
    code = run_cli(argv)
    _, err = capsys.readouterr()
    assert code == 0, err

    from stockade import paths
    from stockade.store import RunStore

    with RunStore.open(paths.run_store()) as runs:
        ev = {e.kind: e.data for e in runs.evidence("e1")}
        rec = runs.get("e1")
    assert list(ev) == ["verification", "image", "sbom", "k8s"]
    v = ev["verification"]
    assert v["subject"] == "dev@acme.example"
    assert v["issuer"] == ISSUER
    assert isinstance(v["integrated_time"], int)
    assert v["registry_rule"] == f"{registry}/keyless/*"
    assert v["verified_at"]
    assert "provenance" in v  # None: the policy asks none, recorded as such
    assert "found_via" in v
    assert ev["image"]["digest"] == ref.digest == rec.image_digest
    assert ev["image"]["requested"] == str(ref)
    assert ev["sbom"]["present"] is False
