"""Provenance, SBOM and referrer-bundle signatures through image_gate + prepare_image, against a
real loopback registry and a policy file (keys, trusted root, rules[].provenance, require_sbom)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.policy import load_policy
from stockade.supplychain import (
    BUNDLE_ARTIFACT_TYPES,
    ImageReference,
    PreparedImage,
    ProvenanceError,
    RegistryClient,
    RegistryError,
    SignatureVerificationError,
    image_evidence,
    image_gate,
    prepare_image,
    push_signature,
    sign_image,
)

from .attach import (
    BUILDER,
    SOURCE,
    attach_attestation,
    attach_referrer,
    envelope,
    push_artifact_tag,
    statement,
)
from .fakelog import FakeLog, new_p256, public_pem
from .images import push_image
from .vectors import FixedClock

pytestmark = [pytest.mark.registry]

SPDX = "application/spdx+json"


def _policy(
    dirpath: Path,
    registry: str,
    key: ec.EllipticCurvePrivateKey,
    *,
    provenance: str | None = f"{{builder: '{BUILDER}', source: '{SOURCE}'}}",
    require_sbom: bool = False,
    log: FakeLog | None = None,
) -> Path:
    dirpath.mkdir(parents=True, exist_ok=True)
    (dirpath / "keys").mkdir(exist_ok=True)
    (dirpath / "keys" / "ci.pub").write_bytes(public_pem(key))
    root = ""
    if log is not None:
        (dirpath / "trusted_root.json").write_bytes(log.trusted_root())
        root = "  trusted_root: trusted_root.json\n"
    prov = f"      provenance: {provenance}\n" if provenance else ""
    f = dirpath / "policy.yaml"
    f.write_text(
        "version: 1\ndefault: deny\n"
        f"registries: ['{registry}/att/*']\n"
        "signatures:\n"
        f"  require_sbom: {str(require_sbom).lower()}\n"
        f"{root}"
        "  rules:\n    - name: ci\n      keys: [keys/ci.pub]\n"
        f"{prov}"
        "servers:\n"
        f"  - name: app\n    image: {registry}/att/app@sha256:{'0' * 64}\n    verify: [ci]\n"
    )
    return f


def _image(client: RegistryClient, registry: str, name: str) -> ImageReference:
    ref, _ = push_image(client, f"{registry}/att/{name}", "v1", {"etc/hello": name.encode()})
    return ref


def _prepare(registry: str, policy_file: Path, ref: ImageReference, tmp: Path) -> PreparedImage:
    gate = image_gate(load_policy(policy_file), "app")
    with RegistryClient(plain_http=(registry,)) as client:
        return prepare_image(
            client,
            str(ref),
            gate,
            store_root=tmp / "oci",
            cache=tmp / "rootfs",
            clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),
            command=("/bin/true",),
        )


@pytest.fixture
def key() -> ec.EllipticCurvePrivateKey:
    return new_p256()


def _signed(registry: str, key: ec.EllipticCurvePrivateKey, name: str) -> ImageReference:
    with RegistryClient(plain_http=(registry,)) as client:
        ref = _image(client, registry, name)
        push_signature(client, ref, sign_image(key, ref))
    return ref


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_signed_provenance_for_the_digest_from_the_approved_builder_and_repo_passes_the_gate(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    ref = _signed(registry, key, "good")
    assert ref.digest is not None
    with RegistryClient(plain_http=(registry,)) as client:
        attach_attestation(client, ref, envelope(statement(ref.digest), key))
    prepared = _prepare(registry, _policy(tmp_path / "p", registry, key), ref, tmp_path)
    evidence = dict(image_evidence(prepared, str(ref), "t"))
    prov = evidence["verification"]["provenance"]
    assert prov["builder_id"] == BUILDER
    assert prov["source_repository"] == SOURCE
    assert prov["rule"] == "ci"
    assert prov["source"] == "att-tag"
    assert prov["predicate_type"] == "https://slsa.dev/provenance/v1"
    assert evidence["sbom"] == {
        "present": False,
        "media_type": None,
        "digest": None,
        "size": None,
        "found_via": None,
    }


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_regex_provenance_rule_matches_the_whole_builder_and_source(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    ref = _signed(registry, key, "regex")
    assert ref.digest is not None
    with RegistryClient(plain_http=(registry,)) as client:
        attach_attestation(client, ref, envelope(statement(ref.digest), key))
    anchored = (
        "{builder_regex: 'https://github\\.com/slsa-framework/.*', "
        "source_regex: 'https://github\\.com/acme/[a-z]+'}"
    )
    _prepare(registry, _policy(tmp_path / "a", registry, key, provenance=anchored), ref, tmp_path)
    partial = "{builder_regex: 'https://github\\.com/slsa', source: 'https://github.com/acme/tool'}"
    with pytest.raises(ProvenanceError, match="provenance builder"):
        _prepare(
            registry, _policy(tmp_path / "b", registry, key, provenance=partial), ref, tmp_path
        )


OTHER = "sha256:" + "9" * 64


@pytest.mark.guarantee("image-provenance-run-gate")
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", r"step 1 \(find\).*no attestation"),
        ("wrong-builder", r"provenance builder: got builder 'https://evil\.example/builder'"),
        ("wrong-source", r"provenance source: got source 'https://github\.com/acme/tool-fork'"),
        ("other-digest", r"provenance subject: got subjects \['sha256:9999"),
        ("unsigned", r"step 2 \(signature\): got an unsigned envelope"),
        ("other-key", r"step 2 \(signature\): got no signature that verifies"),
        ("not-provenance", r"provenance type: got predicateType"),
    ],
)
def test_a_bad_or_missing_provenance_is_refused_with_the_failing_step(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path, case: str, reason: str
) -> None:
    ref = _signed(registry, key, case)
    assert ref.digest is not None
    d = ref.digest
    envs: dict[str, bytes | None] = {
        "missing": None,
        "wrong-builder": envelope(statement(d, builder="https://evil.example/builder"), key),
        "wrong-source": envelope(statement(d, source="https://github.com/acme/tool-fork"), key),
        "other-digest": envelope(statement(OTHER), key),
        "unsigned": envelope(statement(d), None),
        "other-key": envelope(statement(d), new_p256()),
        "not-provenance": envelope(
            statement(d).replace(b"https://slsa.dev/provenance/v1", b"https://spdx.dev/Document"),
            key,
        ),
    }
    env = envs[case]
    if env is not None:
        with RegistryClient(plain_http=(registry,)) as client:
            attach_attestation(client, ref, env)
    with pytest.raises(ProvenanceError, match=reason):
        _prepare(registry, _policy(tmp_path / "p", registry, key), ref, tmp_path)
    assert not (tmp_path / "rootfs").exists()


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_good_provenance_does_not_excuse_a_missing_image_signature(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    with RegistryClient(plain_http=(registry,)) as client:
        ref = _image(client, registry, "attested-unsigned")
        assert ref.digest is not None
        attach_attestation(client, ref, envelope(statement(ref.digest), key))
    with pytest.raises(SignatureVerificationError, match="unsigned"):
        _prepare(registry, _policy(tmp_path / "p", registry, key), ref, tmp_path)


@pytest.mark.guarantee("image-sbom-recorded")
def test_an_sbom_referrer_is_recorded_with_its_media_type_digest_and_size(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    ref = _signed(registry, key, "sbom")
    sbom = b'{"spdxVersion": "SPDX-2.3", "name": "app"}'
    with RegistryClient(plain_http=(registry,)) as client:
        attach_referrer(client, ref, SPDX, sbom)
    pol = _policy(tmp_path / "p", registry, key, provenance=None, require_sbom=True)
    prepared = _prepare(registry, pol, ref, tmp_path)
    assert dict(image_evidence(prepared, str(ref), "t"))["sbom"] == {
        "present": True,
        "media_type": SPDX,
        "digest": "sha256:" + hashlib.sha256(sbom).hexdigest(),
        "size": len(sbom),
        "found_via": "referrer",
    }


@pytest.mark.guarantee("image-sbom-recorded")
def test_a_missing_sbom_is_refused_only_when_the_policy_requires_one(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    ref = _signed(registry, key, "nosbom")
    ok = _prepare(registry, _policy(tmp_path / "a", registry, key, provenance=None), ref, tmp_path)
    assert dict(image_evidence(ok, str(ref), "t"))["sbom"]["present"] is False
    strict = _policy(tmp_path / "b", registry, key, provenance=None, require_sbom=True)
    with pytest.raises(RegistryError, match=r"no SBOM attached.*require_sbom"):
        _prepare(registry, strict, ref, tmp_path / "b")


@pytest.mark.guarantee("image-referrer-bundle-run")
def test_an_image_signed_only_by_a_referrer_bundle_passes_the_gate_when_the_rule_has_a_root(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    log = FakeLog()
    with RegistryClient(plain_http=(registry,)) as client:
        ref = _image(client, registry, "bundled")
        raw, _, digest = client.get_manifest(ref)
        assert digest == ref.digest
        attach_referrer(client, ref, BUNDLE_ARTIFACT_TYPES[0], log.key_bundle(raw, key))
    pol = _policy(tmp_path / "p", registry, key, provenance=None, log=log)
    prepared = _prepare(registry, pol, ref, tmp_path)
    verification = dict(image_evidence(prepared, str(ref), "t"))["verification"]
    assert verification["found_via"] == "referrer"
    assert verification["signer_kind"] == "key"
    assert verification["log_index"] == 101


@pytest.mark.guarantee("image-referrer-bundle-run")
def test_a_referrer_bundle_is_refused_without_a_root_by_another_key_or_for_other_bytes(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    log = FakeLog()
    with RegistryClient(plain_http=(registry,)) as client:
        ref = _image(client, registry, "bundled-bad")
        raw, _, _ = client.get_manifest(ref)
        attach_referrer(client, ref, BUNDLE_ARTIFACT_TYPES[0], log.key_bundle(raw, new_p256()))
        attach_referrer(client, ref, BUNDLE_ARTIFACT_TYPES[0], log.key_bundle(raw + b" ", key))
    no_root = _policy(tmp_path / "a", registry, key, provenance=None)
    with pytest.raises(SignatureVerificationError, match="unsigned"):
        _prepare(registry, no_root, ref, tmp_path)
    with_root = _policy(tmp_path / "b", registry, key, provenance=None, log=log)
    with pytest.raises(SignatureVerificationError, match=r"2 referrer bundle") as info:
        _prepare(registry, with_root, ref, tmp_path)
    assert "step 4" in info.value.what  # the other key
    assert "step 3" in info.value.what  # the other bytes
    assert not (tmp_path / "rootfs").exists()


@pytest.mark.guarantee("image-sbom-recorded")
def test_a_cosign_sbom_tag_is_recorded_when_no_referrer_names_one(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    ref = _signed(registry, key, "sbomtag")
    bom = b'{"bomFormat": "CycloneDX", "specVersion": "1.5"}'
    with RegistryClient(plain_http=(registry,)) as client:
        push_artifact_tag(client, ref, ".sbom", [("application/vnd.cyclonedx+json", bom)])
    pol = _policy(tmp_path / "p", registry, key, provenance=None, require_sbom=True)
    sbom = dict(image_evidence(_prepare(registry, pol, ref, tmp_path), str(ref), "t"))["sbom"]
    assert sbom["found_via"] == "sbom-tag"
    assert sbom["digest"] == "sha256:" + hashlib.sha256(bom).hexdigest()
    assert sbom["size"] == len(bom)


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_server_level_provenance_applies_to_its_rules(
    registry: str, key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    ref = _signed(registry, key, "server-prov")
    assert ref.digest is not None
    pol = _policy(tmp_path / "p", registry, key, provenance=None)
    text = pol.read_text() + f"    provenance: {{builder: '{BUILDER}', source: '{SOURCE}'}}\n"
    pol.write_text(text)
    with pytest.raises(ProvenanceError, match=r"step 1 \(find\)"):
        _prepare(registry, pol, ref, tmp_path)
    with RegistryClient(plain_http=(registry,)) as client:
        attach_attestation(client, ref, envelope(statement(ref.digest), key))
    prepared = _prepare(registry, pol, ref, tmp_path)
    assert (
        dict(image_evidence(prepared, str(ref), "t"))["verification"]["provenance"]["rule"] == "ci"
    )
