"""`stockade image verify|pull --policy FILE [--server NAME]`: trust comes from the policy file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.supplychain import ImageReference, RegistryClient, push_signature, sign_image

from .attach import attach_attestation, attach_referrer, envelope, statement
from .fakelog import new_p256
from .images import push_image
from .test_attest import _policy

pytestmark = [pytest.mark.registry]


def stockade(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockade", "image", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _signed(registry: str, key: ec.EllipticCurvePrivateKey, name: str) -> ImageReference:
    with RegistryClient(plain_http=(registry,)) as client:
        ref, _ = push_image(client, f"{registry}/att/{name}", "v1", {"etc/x": name.encode()})
        push_signature(client, ref, sign_image(key, ref))
    return ref


@pytest.mark.guarantee("image-trust-from-policy")
def test_verify_with_a_policy_uses_its_keys_provenance_and_sbom(
    registry: str, tmp_path: Path
) -> None:
    key = new_p256()
    ref = _signed(registry, key, "cli-good")
    assert ref.digest is not None
    with RegistryClient(plain_http=(registry,)) as client:
        attach_attestation(client, ref, envelope(statement(ref.digest), key))
        attach_referrer(client, ref, "application/vnd.cyclonedx+json", b'{"bomFormat":"x"}')
    pol = _policy(tmp_path, registry, key)
    out = stockade(
        "verify", "--policy", str(pol), "--server", "app", "--plain-http", registry, str(ref)
    )
    assert out.returncode == 0, out.stderr
    assert "provenance: builder https://github.com/slsa-framework" in out.stdout
    assert "sbom: application/vnd.cyclonedx+json sha256:" in out.stdout
    pulled = stockade(
        "pull", "--policy", str(pol), "--plain-http", registry, "--store", str(tmp_path / "s"),
        str(ref),
    )  # fmt: skip
    assert pulled.returncode == 0, pulled.stderr
    assert ref.digest in pulled.stdout


@pytest.mark.guarantee("image-trust-from-policy")
def test_verify_with_a_policy_refuses_a_signer_the_policy_does_not_name(
    registry: str, tmp_path: Path
) -> None:
    ref = _signed(registry, new_p256(), "cli-other")
    pol = _policy(tmp_path, registry, new_p256(), provenance=None)
    out = stockade("verify", "--policy", str(pol), "--plain-http", registry, str(ref))
    assert out.returncode != 0
    assert "no valid signature" in out.stderr


@pytest.mark.guarantee("image-trust-from-policy")
@pytest.mark.parametrize(
    "extra",
    [["--key", "k.pub"], ["--allow", "r/x/*"], ["--trusted-root", "t.json"]],
)
def test_mixing_policy_and_ad_hoc_trust_options_is_a_usage_error(
    tmp_path: Path, extra: list[str]
) -> None:
    pol = _policy(tmp_path, "127.0.0.1:1", new_p256())
    out = stockade("verify", "--policy", str(pol), *extra, "127.0.0.1:1/att/app:v1")
    assert out.returncode != 0
    assert "--policy takes trust from the policy file" in out.stderr


def test_server_without_policy_is_a_usage_error() -> None:
    out = stockade("verify", "--server", "app", "--key", "k.pub", "127.0.0.1:1/att/app:v1")
    assert out.returncode != 0
    assert "--server needs --policy" in out.stderr
