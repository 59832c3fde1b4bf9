"""Shared builders for the Kubernetes backend tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stockade.kube import Manifest, RenderInput, render
from stockade.models import NetworkProfile, PinnedImage, SandboxSpec
from stockade.policy import Policy, load_policy

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = REPO / "examples" / "k8s" / "policy.yaml"
DIGEST = "sha256:" + "ab" * 32
IMAGE = PinnedImage(registry="ghcr.io", repository="acme/tool", digest=DIGEST)
REGISTRIES = ("ghcr.io/acme/*",)
TOKEN = "t" * 43
PROXY_IP = "10.96.0.50"
PROXY_DIGEST = "sha256:" + "cd" * 32
PROXY_IMAGE = PinnedImage(registry="ghcr.io", repository="acme/stockade", digest=PROXY_DIGEST)


def example_policy() -> Policy:
    return load_policy(EXAMPLE_POLICY)


def spec(**kw: Any) -> SandboxSpec:
    base: dict[str, Any] = {"argv": ("/bin/tool", "--stdio")}
    base.update(kw)
    return SandboxSpec(**base)


def allowlist(*domains: str) -> NetworkProfile:
    return NetworkProfile(mode="allowlist", domains=domains or ("api.example.com",))


def render_input(s: SandboxSpec | None = None, **kw: Any) -> RenderInput:
    s = s or spec()
    base: dict[str, Any] = {
        "spec": s,
        "image": IMAGE,
        "server": "tool",
        "run_id": "r1",
        "namespace": "stockade-tool",
        "secret_values": dict.fromkeys(s.secrets, b"value"),
    }
    if s.network.mode == "allowlist":
        base |= {
            "egress_proxy_ip": PROXY_IP,
            "egress_token": TOKEN,
            "egress_proxy_image": PROXY_IMAGE,
        }
    base.update(kw)
    return RenderInput(**base)


def objs_of(s: SandboxSpec | None = None, **kw: Any) -> tuple[Manifest, ...]:
    return render(render_input(s, **kw))


def one(objs: tuple[Manifest, ...], kind: str, role: str | None = None) -> Manifest:
    found = [
        o
        for o in objs
        if o["kind"] == kind
        and (role is None or o["metadata"]["labels"].get("stockade.dev/role") == role)
    ]
    assert len(found) == 1, f"expected one {kind} ({role}), got {len(found)}"
    return found[0]


def pod_spec(objs: tuple[Manifest, ...]) -> dict[str, Any]:
    spec_: dict[str, Any] = one(objs, "Pod")["spec"]
    return spec_
