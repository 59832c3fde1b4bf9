"""Image servers in the gateway's configuration: never launched unverified; the verified rootfs
runs with the policy's limits and network and the image's Env/User only through the filters."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.errors import SandboxError, StockadeError
from stockade.gateway import load_any, load_policy_for_gateway, sandbox_spec_for
from stockade.gateway._config import ServerImage

DIGEST = "sha256:" + "ab" * 32
REF = f"registry.test/team/app@{DIGEST}"

POLICY = f"""\
version: 1
default: deny
registries: ['registry.test/team/*']
signatures:
  rules:
    - name: team
      keys: [team.pub]
servers:
  - name: app
    image: {REF}
    verify: [team]
    network: [api.example.com]
    env: {{MODE: prod}}
"""


def write(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "team.pub").write_bytes(pem)
    p = tmp_path / "policy.yaml"
    p.write_text(POLICY)
    return p


def verified(user: str = "", env: tuple[str, ...] = ()) -> ServerImage:
    return ServerImage(
        requested=REF, reference=REF, digest=DIGEST, rootfs="/var/cache/rootfs/x",
        workdir="/app", env=env, user=user, evidence=(("verification", {"rule": "team"}),),
    )  # fmt: skip


@pytest.mark.guarantee("gw-image-verified-before-serving")
def test_an_image_server_loaded_without_the_gate_is_described_but_never_launched(
    tmp_path: Path,
) -> None:
    (spec,) = load_policy_for_gateway(write(tmp_path)).config.servers
    assert spec.image is not None
    assert spec.package == REF  # what its pins bind to: the digest reference
    with pytest.raises(SandboxError, match="was not verified by this gateway"):
        sandbox_spec_for(spec)


@pytest.mark.guarantee("gw-image-verified-before-serving")
def test_a_verified_image_server_runs_its_rootfs_with_the_policy_network_and_filtered_env(
    tmp_path: Path,
) -> None:
    calls: list[str] = []

    def verify(policy: object, server: str) -> tuple[ServerImage, tuple[str, ...]]:
        calls.append(server)
        return verified(env=("PATH=/bin", "LD_PRELOAD=/evil.so", "MODE=debug")), ("/app/run",)

    cfg, _, _ = load_any(write(tmp_path), verify)
    assert calls == ["app"]
    (spec,) = cfg.servers
    boxed = sandbox_spec_for(spec)
    assert boxed.argv == ("/app/run",)
    assert boxed.rootfs == "/var/cache/rootfs/x"
    assert boxed.image_digest == DIGEST
    assert boxed.cwd == "/app"
    assert boxed.runtime.value == "gvisor"
    assert boxed.network.mode == "allowlist"
    assert boxed.network.domains == ("api.example.com",)
    env = dict(boxed.env)
    assert "LD_PRELOAD" not in env
    assert env["MODE"] == "prod"  # the policy's env wins over the image's
    assert boxed.uid != 0


def test_an_image_asking_to_run_as_root_is_refused_by_the_spec_builder(tmp_path: Path) -> None:
    cfg, _, _ = load_any(write(tmp_path), lambda p, s: (verified(user="0"), ("/app/run",)))
    with pytest.raises(SandboxError):
        sandbox_spec_for(cfg.servers[0])


def test_a_refusing_gate_refuses_the_whole_policy(tmp_path: Path) -> None:
    def verify(policy: object, server: str) -> tuple[ServerImage, tuple[str, ...]]:
        raise SandboxError("image did not verify", "sign it")

    with pytest.raises(StockadeError, match="image did not verify"):
        load_any(write(tmp_path), verify)


def test_a_gateway_section_cannot_name_an_image_server(tmp_path: Path) -> None:
    p = tmp_path / "gw.yaml"
    p.write_text(
        "gateway:\n  servers:\n    - name: app\n      command: [x]\n"
        f"      image: {{requested: {REF}, reference: {REF}}}\n"
    )
    with pytest.raises(StockadeError, match="only a stockade policy serves image servers"):
        load_any(p)
