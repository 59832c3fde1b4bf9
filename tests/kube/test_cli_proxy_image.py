"""The egress proxy's image from the policy (``kubernetes.egress_proxy_image``), overridden by
``--egress-proxy-image`` only with a value that passes the same checks (pinned by digest, from a
listed registry): ``stockade k8s render`` and the ``stockade gateway --backend kubernetes`` plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from stockade.kube import runtime_class
from stockade.testing import FakeCluster

from ._helpers import EXAMPLE_POLICY, PROXY_DIGEST, PROXY_IP
from .test_cli import run_cli

POLICY_PROXY = f"ghcr.io/acme/stockade@{PROXY_DIGEST}"
OTHER_PROXY = "ghcr.io/acme/stockade-next@sha256:" + "9a" * 32


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    text = EXAMPLE_POLICY.read_text()
    path.write_text(text + f"\nkubernetes:\n  egress_proxy_image: {POLICY_PROXY}\n")
    return path


def _render(policy: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    argv = ["k8s", "render", "--policy", str(policy), "--server", "github", "--run-id", "p1"]
    code = run_cli([*argv, "--egress-proxy-ip", PROXY_IP, *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _proxy_image(out: str) -> str:
    (dep,) = [o for o in yaml.safe_load_all(out) if o["kind"] == "Deployment"]
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
def test_the_policy_setting_supplies_the_proxy_image_without_the_option(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _render(policy, capsys)
    assert code == 0, err
    assert _proxy_image(out) == POLICY_PROXY


def test_the_option_overrides_the_policy_setting_with_a_pinned_listed_image(
    policy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _render(policy, capsys, "--egress-proxy-image", OTHER_PROXY)
    assert code == 0, err
    assert _proxy_image(out) == OTHER_PROXY


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
@pytest.mark.parametrize(
    ("image", "message"),
    [
        (
            "ghcr.io/acme/stockade:v2",
            "--egress-proxy-image 'ghcr.io/acme/stockade:v2' is not pinned",
        ),
        ("docker.io/evil/proxy@" + PROXY_DIGEST, "not in the policy's registries allowlist"),
        ("Not A Reference", "--egress-proxy-image:"),
    ],
)
def test_the_option_cannot_override_the_policy_with_an_image_failing_its_checks(
    policy: Path, capsys: pytest.CaptureFixture[str], image: str, message: str
) -> None:
    code, out, err = _render(policy, capsys, "--egress-proxy-image", image)
    assert code != 0
    assert message in err
    assert out == ""


def test_without_the_setting_or_the_option_an_allowlist_render_names_both(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _render(EXAMPLE_POLICY, capsys)
    assert code != 0
    assert "kubernetes.egress_proxy_image" in err
    assert "--egress-proxy-image" in err
    assert out == ""


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
def test_the_kubernetes_gateway_plan_takes_the_proxy_image_from_the_policy(
    policy: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    cluster = FakeCluster(daemonsets={"kube-system": ("cilium",)})
    cluster.put(runtime_class())
    monkeypatch.setattr("stockade.cli._k8s._connect", lambda kubeconfig, context: cluster)

    def verified(pol: Any, server: str, *_: object) -> tuple[str, dict[str, object]]:
        image = str(pol.server(server).image)  # the registry side of the gate, by its result
        return image.partition("@")[2], {"reference": image, "digest": image.partition("@")[2]}

    monkeypatch.setattr("stockade.cli._k8s._verify_image", verified)
    argv = ["gateway", "--policy", str(policy), "--stdio", "--backend", "kubernetes"]
    assert run_cli([*argv, "--egress-proxy-ip", PROXY_IP]) == 0
    out = capsys.readouterr().out
    assert "create  Deployment stockade-egress/stockade-egress-proxy" in out
    assert f"image: {POLICY_PROXY}" in out
    assert cluster.calls == []
