"""``stockade gateway --backend kubernetes --apply`` with the real supply-chain gate on the happy
path: an image pushed to a real loopback OCI registry (Debian's docker-registry), signed with a
cosign-format signature by stockade's own signing code under a key the policy's ``verify:`` rule
names, served through the official ``kubernetes`` client against the loopback ApiServerDouble and
the MCP SDK client. Nothing about the image's verification is replaced: the Pod runs the digest
the gate resolved, and an unsigned, wrongly signed or re-tagged image is refused before the
cluster is asked anything."""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.kube import runtime_class
from stockade.supplychain import (
    ImageReference,
    RegistryClient,
    push_signature,
    sign_image,
)
from supplychain.conftest import registry
from supplychain.fakelog import new_p256, public_pem
from supplychain.images import push_image

from ._api_double import ApiServerDouble, serve
from .test_cli import run_cli
from .test_client_adapter import SDK_ECHO, daemonset
from .test_gateway_kube import _session_real_client

pytestmark = [pytest.mark.registry]
__all__ = ["registry"]  # the session-scoped loopback registry fixture, reused

DOUBLE = Path(__file__).parent / "_gateway_double.py"
_REPOS = itertools.count(1)


def _key(public_path: Path) -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key whose public PEM is written to ``public_path``."""
    key = new_p256()
    public_path.parent.mkdir(parents=True, exist_ok=True)
    public_path.write_bytes(public_pem(key))
    return key


def _push(registry: str, repo: str, tag: str, marker: bytes) -> ImageReference:
    with RegistryClient(plain_http=(registry,)) as client:
        ref, _ = push_image(client, f"{registry}/{repo}", tag, {"etc/marker": marker})
    return ref


def _sign(registry: str, ref: ImageReference, key: ec.EllipticCurvePrivateKey) -> None:
    with RegistryClient(plain_http=(registry,)) as client:
        push_signature(client, ref, sign_image(key, ref))


@dataclass(frozen=True)
class World:
    registry: str
    home: Path
    policy: Path
    repo: str  # this test's own repository in the shared registry
    key: ec.EllipticCurvePrivateKey  # the signer the policy trusts
    double: ApiServerDouble
    kubeconfig: Path


def _policy(registry: str, repo: str) -> str:
    return (
        "version: 1\ndefault: deny\n"
        f"registries: ['{registry}/acme/*']\n"
        "signatures:\n"
        "  require_digest: false\n"
        "  rules:\n    - name: team\n      keys: [keys/team.pub]\n"
        "servers:\n"
        f"  - name: echo\n    image: {registry}/{repo}:v1\n    verify: [team]\n"
        "    network: none\n    tofu: true\n"
        "    tools:\n      default: deny\n"
        "      rules:\n        - {tool: echo, action: allow, tier: low}\n"
    )


@pytest.fixture
def world(registry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # the client's discovery cache
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    pdir = tmp_path / "policy"
    key = _key(pdir / "keys" / "team.pub")
    repo = f"acme/echo-{next(_REPOS)}"
    policy = pdir / "policy.yaml"
    policy.write_text(_policy(registry, repo))
    d = ApiServerDouble()
    d.put(runtime_class())
    d.put(daemonset("cilium"))
    d.run_pods = True
    d.attach_argv = [sys.executable, str(SDK_ECHO)]
    with serve(d, tmp_path) as kubeconfig:
        yield World(registry, tmp_path / "home", policy, repo, key, d, kubeconfig)


@pytest.mark.guarantee("k8s-gateway-verified-first")
@pytest.mark.guarantee("k8s-gateway-real-gate")
def test_a_signed_image_is_verified_for_real_and_its_pod_runs_the_verified_digest(
    world: World, tmp_path: Path
) -> None:
    pinned = _push(world.registry, world.repo, "v1", b"good")
    _sign(world.registry, pinned, world.key)
    (tmp_path / "state").mkdir()
    before = set(world.double.objects)
    gate = ("--plain-http", world.registry)  # no --verified: the real gate runs
    session = _session_real_client(tmp_path, world.policy, world.kubeconfig, *gate, verified=None)
    seen = asyncio.run(asyncio.wait_for(session, 90))
    assert "echo__echo" in seen["tools"]
    assert "Echo: over the websocket" in seen["echo"].content[0].text
    (pod,) = [o for o in world.double.created if o["kind"] == "Pod"]
    assert pod["spec"]["runtimeClassName"] == "gvisor"
    image = pod["spec"]["containers"][0]["image"]
    assert image == f"{world.registry}/{world.repo}@{pinned.digest}"
    assert set(world.double.objects) == before  # the gateway's exit rolled the run back

    from stockade.store import RunStore

    with RunStore.open(world.home / "runs.db") as runs:
        (rec,) = runs.list()
        ev = {e.kind: e.data for e in runs.evidence(rec.run_id)}
    assert (rec.backend, rec.image_digest) == ("kubernetes", pinned.digest)
    v = ev["verification"]
    assert (v["rule"], v["signer_kind"], v["digest"]) == ("team", "key", pinned.digest)
    assert v["registry_rule"] == f"{world.registry}/acme/*"
    assert ev["image"]["requested"] == f"{world.registry}/{world.repo}:v1"


def _unsigned(w: World) -> str:
    _push(w.registry, w.repo, "v1", b"never signed")
    return "is unsigned: got 0 signatures"


def _other_key(w: World) -> str:
    pinned = _push(w.registry, w.repo, "v1", b"signed by a stranger")
    _sign(w.registry, pinned, _key(w.policy.parent / "stranger.pub"))
    return "verifies under none of the rule's keys"


def _moved_tag(w: World) -> str:
    """Signed once, then the tag is moved to another image (the signature names the old one)."""
    first = _push(w.registry, w.repo, "v1", b"the image that was signed")
    _sign(w.registry, first, w.key)
    _push(w.registry, w.repo, "v1", b"swapped in after signing")
    return "is unsigned: got 0 signatures"


@pytest.mark.guarantee("k8s-gateway-verified-first")
@pytest.mark.guarantee("k8s-gateway-real-gate")
@pytest.mark.parametrize("tamper", [_unsigned, _other_key, _moved_tag])
def test_an_unsigned_or_tampered_image_is_refused_before_the_cluster_is_asked_anything(
    world: World, capsys: pytest.CaptureFixture[str], tamper: Any
) -> None:
    expected = tamper(world)
    argv = ["gateway", "--policy", str(world.policy), "--stdio", "--backend", "kubernetes"]
    argv += ["--apply", "--kubeconfig", str(world.kubeconfig), "--plain-http", world.registry]
    code = run_cli(argv)
    err = capsys.readouterr().err
    assert code != 0
    assert expected in err, err
    assert world.double.created == []
    assert world.double.requests == []  # not even a read: the gate runs first
    from stockade.store import RunStore

    with RunStore.open(world.home / "runs.db") as runs:
        (rec,) = runs.list()
    assert (rec.status.value, rec.server, rec.backend) == ("refused", "echo", "kubernetes")
