"""Against a real registry on loopback: resolve, sign, verify, pull, and every fail-closed case."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from stockade.supplychain import (
    ImageReferenceError,
    OciLayoutStore,
    Platform,
    RegistryAllowlist,
    RegistryClient,
    RegistryDeniedError,
    RegistryError,
    SignatureRule,
    SignatureVerificationError,
    VerificationPolicy,
    load_private_key,
    parse_reference,
    pull_image,
    push_signature,
    require_pinned,
    sign_image,
    unpack_image,
    verify_remote_image,
)

from .fakelog import new_p256, public_pem
from .images import push_image, push_index
from .vectors import FixedClock

pytestmark = pytest.mark.registry


def _priv(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture
def client(registry: str) -> RegistryClient:
    with RegistryClient(plain_http=(registry,)) as c:
        yield c  # type: ignore[misc]


def _policy(key: object) -> VerificationPolicy:
    return VerificationPolicy(
        rules=(SignatureRule(name="test key", public_keys=(public_pem(key).decode(),)),)
    )


def _verify(client: RegistryClient, registry: str, text: str, key: object) -> object:
    return verify_remote_image(
        client,
        parse_reference(text),
        allowlist=RegistryAllowlist.of(f"{registry}/*"),
        policy=_policy(key),
        clock=FixedClock(),
    )


def test_resolve_pins_a_tag_to_the_sha256_of_the_manifest_bytes(
    client: RegistryClient, registry: str
) -> None:
    ref, manifest = push_image(client, f"{registry}/acme/resolve", "v1", {"a": b"1"})
    resolved = client.resolve(parse_reference(f"{registry}/acme/resolve:v1"))
    assert resolved.digest == "sha256:" + hashlib.sha256(manifest).hexdigest() == ref.digest


def test_a_signed_allowlisted_image_verifies_and_pulls_into_the_store(
    client: RegistryClient, registry: str, store_dir: Path
) -> None:
    key = new_p256()
    ref, _ = push_image(client, f"{registry}/acme/tool", "v1", {"bin/tool": b"#!/bin/true\n"})
    push_signature(client, ref, sign_image(load_private_key(_priv(key)), ref))
    verified = _verify(client, registry, f"{registry}/acme/tool:v1", key)
    assert verified.pinned.digest == ref.digest  # type: ignore[attr-defined]
    assert verified.allowed_by == f"{registry}/*"  # type: ignore[attr-defined]
    store = OciLayoutStore(store_dir)
    digest = pull_image(client, verified, store)  # type: ignore[arg-type]
    assert digest == ref.digest
    index = json.loads((store_dir / "index.json").read_text())
    assert index["manifests"][0]["digest"] == ref.digest
    for blob in (store_dir / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name
    rootfs = unpack_image(store_dir, digest, store_dir.parent / "rootfs-cache")
    assert (rootfs / "bin" / "tool").read_bytes() == b"#!/bin/true\n"
    assert unpack_image(store_dir, digest, store_dir.parent / "rootfs-cache") == rootfs


@pytest.mark.guarantee("image-reject-unsigned")
def test_an_unsigned_image_is_denied(client: RegistryClient, registry: str) -> None:
    push_image(client, f"{registry}/acme/unsigned", "v1", {"a": b"u"})
    with pytest.raises(SignatureVerificationError, match="unsigned"):
        _verify(client, registry, f"{registry}/acme/unsigned:v1", new_p256())


@pytest.mark.guarantee("image-reject-wrong-key")
def test_an_image_signed_by_another_key_is_denied(client: RegistryClient, registry: str) -> None:
    ref, _ = push_image(client, f"{registry}/acme/otherkey", "v1", {"a": b"k"})
    push_signature(client, ref, sign_image(load_private_key(_priv(new_p256())), ref))
    with pytest.raises(SignatureVerificationError, match=r"step 4"):
        _verify(client, registry, f"{registry}/acme/otherkey:v1", new_p256())


@pytest.mark.guarantee("image-any-valid-signature")
def test_a_bad_signature_next_to_a_good_one_does_not_block(
    client: RegistryClient, registry: str
) -> None:
    key = new_p256()
    ref, _ = push_image(client, f"{registry}/acme/mixed", "v1", {"a": b"m"})
    push_signature(client, ref, sign_image(load_private_key(_priv(new_p256())), ref))
    push_signature(client, ref, sign_image(load_private_key(_priv(key)), ref))
    verified = _verify(client, registry, f"{registry}/acme/mixed:v1", key)
    assert verified.evidence.signature_index == 1  # type: ignore[attr-defined]


@pytest.mark.guarantee("image-reject-wrong-identity")
def test_a_signature_copied_from_another_repository_is_denied(
    client: RegistryClient, registry: str
) -> None:
    key = new_p256()
    ref_a, _ = push_image(client, f"{registry}/acme/a", "v1", {"same": b"x"})
    ref_b, _ = push_image(client, f"{registry}/acme/b", "v1", {"same": b"x"})
    assert ref_a.digest == ref_b.digest
    push_signature(client, ref_b, sign_image(load_private_key(_priv(key)), ref_a))
    with pytest.raises(SignatureVerificationError, match=r"step 9 \(reference\)"):
        _verify(client, registry, f"{registry}/acme/b:v1", key)


@pytest.mark.guarantee("image-registry-allowlist")
def test_a_registry_not_on_the_allowlist_is_denied_before_any_request(
    client: RegistryClient, registry: str
) -> None:
    with pytest.raises(RegistryDeniedError, match="nearest rule"):
        verify_remote_image(
            client,
            parse_reference(f"{registry}/acme/tool:v1"),
            allowlist=RegistryAllowlist.of("ghcr.io/acme/*"),
            policy=_policy(new_p256()),
            clock=FixedClock(),
        )


@pytest.mark.guarantee("image-tag-moved")
def test_a_tag_moved_after_verification_changes_nothing_that_runs(
    client: RegistryClient, registry: str, store_dir: Path
) -> None:
    key = new_p256()
    name = f"{registry}/acme/moving"
    ref, _ = push_image(client, name, "v1", {"v": b"1"})
    push_signature(client, ref, sign_image(load_private_key(_priv(key)), ref))
    verified = _verify(client, registry, f"{name}:v1", key)
    moved, _ = push_image(client, name, "v1", {"v": b"evil"})  # the tag now names other bytes
    assert moved.digest != ref.digest
    assert pull_image(client, verified, OciLayoutStore(store_dir)) == ref.digest  # type: ignore[arg-type]
    with pytest.raises(SignatureVerificationError, match="unsigned"):
        _verify(client, registry, f"{name}:v1", key)  # re-verifying the tag sees the new bytes
    with pytest.raises(SignatureVerificationError):
        _verify(client, registry, f"{name}:v1@{moved.digest}", key)


@pytest.mark.guarantee("image-reject-unpinned")
def test_a_tag_only_reference_is_refused_at_run_time() -> None:
    with pytest.raises(ImageReferenceError, match="tag-only reference at run time"):
        require_pinned("127.0.0.1:5000/acme/tool:v1")
    assert require_pinned("127.0.0.1:5000/acme/tool@sha256:" + "a" * 64).digest.endswith("a")


def test_an_index_pulls_the_requested_platform_only(
    client: RegistryClient, registry: str, store_dir: Path
) -> None:
    key = new_p256()
    ref, digests = push_index(
        client, f"{registry}/acme/multi", "v1", {"amd64": b"x86", "arm64": b"arm"}
    )
    push_signature(client, ref, sign_image(load_private_key(_priv(key)), ref))
    verified = _verify(client, registry, f"{registry}/acme/multi:v1", key)
    store = OciLayoutStore(store_dir)
    got = pull_image(client, verified, store, platform=Platform(architecture="arm64"))  # type: ignore[arg-type]
    assert got == digests["arm64"]
    with pytest.raises(RegistryError, match="riscv64"):
        pull_image(client, verified, store, platform=Platform(architecture="riscv64"))  # type: ignore[arg-type]


def test_a_pinned_digest_the_registry_does_not_have_is_refused(
    client: RegistryClient, registry: str
) -> None:
    push_image(client, f"{registry}/acme/pinned", "v1", {"a": b"p"})
    with pytest.raises(RegistryError, match="not found"):
        client.get_manifest(parse_reference(f"{registry}/acme/pinned@sha256:" + "0" * 64))


@pytest.mark.guarantee("image-registry-unreachable")
def test_an_unreachable_registry_denies_with_the_reason() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        with (
            RegistryClient(plain_http=(f"127.0.0.1:{port}",), timeout=5) as c,
            pytest.raises(RegistryError, match="unreachable"),
        ):
            c.resolve(parse_reference(f"127.0.0.1:{port}/acme/tool:v1"))


def test_the_cli_signs_and_verifies_against_the_registry(
    client: RegistryClient, registry: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from stockade.cli import cli

    key = new_p256()
    (tmp_path / "k.pem").write_bytes(_priv(key))
    (tmp_path / "k.pub").write_bytes(public_pem(key))
    ref, _ = push_image(client, f"{registry}/acme/cli", "v1", {"c": b"c"})
    runner = CliRunner()
    out = runner.invoke(cli, ["image", "resolve", "--plain-http", registry, f"{ref.name}:v1"])
    assert out.exit_code == 0, out.output
    assert out.output.strip() == str(ref)
    base = ["--plain-http", registry, "--allow", f"{registry}/acme/*"]
    pub = str(tmp_path / "k.pub")
    denied = runner.invoke(cli, ["image", "verify", *base, "--key", pub, str(ref)])
    assert denied.exit_code != 0
    signed = runner.invoke(
        cli, ["image", "sign", "--plain-http", registry, "--key", str(tmp_path / "k.pem"), str(ref)]
    )
    assert signed.exit_code == 0, signed.output
    ok = runner.invoke(
        cli, ["image", "verify", *base, "--key", str(tmp_path / "k.pub"), f"{ref.name}:v1"]
    )
    assert ok.exit_code == 0, ok.output
    assert ref.digest in ok.output
    store = tmp_path / "store"
    pulled = runner.invoke(
        cli, ["image", "pull", *base, "--key", pub, "--store", str(store), f"{ref.name}:v1"]
    )
    assert pulled.exit_code == 0, pulled.output
    assert ref.digest is not None
    assert (store / "blobs" / "sha256" / ref.digest.removeprefix("sha256:")).is_file()
