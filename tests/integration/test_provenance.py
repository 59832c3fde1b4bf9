"""``stockade run --image`` with a provenance-required policy: the gate, the refusals, the trace.

Everything is real: Debian's docker-registry on loopback, busybox images built here, a P-256 key
made here signing the image (cosign .sig tag) and its SLSA provenance (cosign .att DSSE envelope),
an SPDX SBOM and a Sigstore bundle attached as OCI referrers (fallback tag), the stockade CLI as a
subprocess, gVisor.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from test_image_run import (
    GREETING,
    Registry,
    World,
    _assert_refused,
    new_key,
    push,
    registry,
    sign,
)

from stockade.errors import SandboxError
from stockade.sandbox import find_gvisor
from stockade.supplychain import (
    BUNDLE_ARTIFACT_TYPES,
    DSSE_MEDIA_TYPE,
    ImageReference,
    RegistryClient,
    RegistryError,
    dsse_pae,
    load_private_key,
)

pytestmark = [pytest.mark.gvisor, pytest.mark.registry]
__all__ = ["registry"]  # the module-scoped loopback registry fixture, reused

IN_TOTO = "application/vnd.in-toto+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/g.yml@v2"
SOURCE = "https://github.com/acme/tool"
SPDX = "application/spdx+json"


def _desc(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    d = {"mediaType": media_type, "digest": "sha256:" + hashlib.sha256(data).hexdigest()}
    return {**d, "size": len(data), **extra}


def _statement(digest: str, builder: str = BUILDER, source: str = SOURCE) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://slsa.dev/provenance/v1",
            "subject": [{"name": "app", "digest": {"sha256": digest[7:]}}],
            "predicate": {
                "buildDefinition": {"externalParameters": {"workflow": {"repository": source}}},
                "runDetails": {"builder": {"id": builder}},
            },
        }
    ).encode()


def _envelope(payload: bytes, private_pem: bytes | None) -> bytes:
    sigs = []
    if private_pem is not None:
        key = load_private_key(private_pem)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        sig = key.sign(dsse_pae(IN_TOTO, payload), ec.ECDSA(hashes.SHA256()))
        sigs.append({"keyid": "", "sig": base64.b64encode(sig).decode()})
    doc = {
        "payloadType": IN_TOTO,
        "payload": base64.b64encode(payload).decode(),
        "signatures": sigs,
    }
    return json.dumps(doc).encode()


def _tagged(image: ImageReference, suffix: str) -> ImageReference:
    assert image.digest is not None
    tag = "sha256-" + image.digest[7:] + suffix
    return ImageReference(registry=image.registry, repository=image.repository, tag=tag)


def attest(reg: Registry, image: ImageReference, env: bytes) -> None:
    """A cosign-style ``.att`` tag holding one DSSE envelope layer."""
    ref = _tagged(image, ".att")
    with RegistryClient(plain_http=(reg.host,)) as client:
        client.push_blob(ref, b"{}")
        client.push_blob(ref, env)
        raw = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _desc("application/vnd.oci.image.config.v1+json", b"{}"),
                "layers": [_desc(DSSE_MEDIA_TYPE, env)],
            }
        ).encode()
        assert ref.tag is not None
        client.push_manifest(ref, raw, OCI_MANIFEST, ref.tag)


def refer(reg: Registry, image: ImageReference, artifact_type: str, blob: bytes) -> None:
    """``blob`` as an OCI 1.1 referrer of ``image``, listed in the fallback-tag index."""
    assert image.digest is not None
    with RegistryClient(plain_http=(reg.host,)) as client:
        client.push_blob(image, b"{}")
        client.push_blob(image, blob)
        artifact = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "artifactType": artifact_type,
                "config": _desc("application/vnd.oci.empty.v1+json", b"{}"),
                "layers": [_desc(artifact_type, blob)],
                "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": 1},
            }
        ).encode()
        tagless = ImageReference(registry=image.registry, repository=image.repository)
        client.push_manifest(tagless, artifact, OCI_MANIFEST, "art-" + image.digest[7:23])
        fallback = _tagged(image, "")
        try:
            raw, _, _ = client.get_manifest(fallback)
            entries = list(json.loads(raw)["manifests"])
        except RegistryError:
            entries = []
        entries.append(_desc(OCI_MANIFEST, artifact, artifactType=artifact_type))
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        assert fallback.tag is not None
        client.push_manifest(tagless, index.encode(), OCI_INDEX, fallback.tag)


@dataclass(frozen=True)
class PWorld:
    w: World
    key: bytes


@pytest.fixture
def pworld(registry: Registry, tmp_path: Path) -> PWorld:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    if not Path("/bin/busybox").is_file():
        pytest.skip("BUSYBOX ABSENT: apt-get install busybox-static")
    pdir = tmp_path / "policy"
    key = new_key(pdir / "keys" / "team.pub")
    other = new_key(tmp_path / "untrusted.pub")
    policy = pdir / "policy.yaml"
    policy.write_text(
        "version: 1\ndefault: deny\n"
        f"registries: ['{registry.host}/prov/*']\n"
        "signatures:\n"
        "  rules:\n"
        "    - name: team\n"
        "      keys: [keys/team.pub]\n"
        "      provenance:\n"
        f"        builder: '{BUILDER}'\n"
        f"        source: '{SOURCE}'\n"
        "servers:\n"
        f"  - name: app\n    image: {registry.host}/prov/app@sha256:{'0' * 64}\n"
        "    verify: [team]\n"
    )
    return PWorld(World(registry, tmp_path / "home", policy, key, other), key)


def _signed(p: PWorld, name: str) -> ImageReference:
    pinned = push(p.w.registry, f"prov/{name}", "v1")
    sign(p.w.registry, pinned, p.key)
    return pinned


@pytest.mark.guarantee("image-provenance-run-gate")
@pytest.mark.guarantee("image-sbom-recorded")
def test_a_provenance_required_image_with_a_good_attestation_runs_and_the_trace_has_it_and_the_sbom(
    pworld: PWorld,
) -> None:
    pinned = _signed(pworld, "good")
    assert pinned.digest is not None
    attest(pworld.w.registry, pinned, _envelope(_statement(pinned.digest), pworld.key))
    sbom = b'{"spdxVersion": "SPDX-2.3", "name": "app"}'
    refer(pworld.w.registry, pinned, SPDX, sbom)
    r = pworld.w.run("--json", "--image", str(pinned))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(GREETING + "\n")
    record = json.loads(r.stdout[len(GREETING) + 1 :])
    trace = pworld.w.trace(record["run_id"])
    (verification,) = trace["verification"]  # type: ignore[misc]
    prov = verification["data"]["provenance"]
    assert prov["builder_id"] == BUILDER
    assert prov["source_repository"] == SOURCE
    events = trace["events"]
    assert isinstance(events, list)
    (sbom_ev,) = [e for e in events if e["kind"] == "sbom"]
    assert sbom_ev["data"]["digest"] == "sha256:" + hashlib.sha256(sbom).hexdigest()
    assert sbom_ev["data"]["media_type"] == SPDX
    assert sbom_ev["data"]["size"] == len(sbom)
    text = pworld.w.trace_text(record["run_id"])
    assert "sha256:" + hashlib.sha256(sbom).hexdigest() in text


OTHER = "sha256:" + "9" * 64


@pytest.mark.guarantee("image-provenance-run-gate")
@pytest.mark.guarantee("image-run-refusal-recorded")
@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("missing", "step 1 (find)"),
        ("wrong-builder", "provenance builder: got builder 'https://evil.example/builder'"),
        ("wrong-source", "provenance source: got source 'https://github.com/acme/fork'"),
        ("other-digest", "provenance subject: got subjects ['sha256:9999"),
        ("unsigned", "step 2 (signature): got an unsigned envelope"),
    ],
)
def test_a_bad_provenance_refuses_the_run_with_its_reason(
    pworld: PWorld, case: str, reason: str
) -> None:
    pinned = _signed(pworld, case)
    d = pinned.digest
    assert d is not None
    statements = {
        "wrong-builder": _statement(d, builder="https://evil.example/builder"),
        "wrong-source": _statement(d, source="https://github.com/acme/fork"),
        "other-digest": _statement(OTHER),
        "unsigned": _statement(d),
    }
    if case in statements:
        key = None if case == "unsigned" else pworld.key
        attest(pworld.w.registry, pinned, _envelope(statements[case], key))
    r = pworld.w.run("--image", str(pinned))
    _assert_refused(pworld.w, r, reason)


@pytest.mark.guarantee("image-referrer-bundle-run")
def test_an_image_signed_only_by_a_referrer_bundle_runs_on_gvisor(
    registry: Registry, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from supplychain.fakelog import FakeLog  # the test Rekor log (an in-process key)

    log = FakeLog()
    pdir = tmp_path / "policy"
    private = new_key(pdir / "keys" / "team.pub")
    (pdir / "trusted_root.json").write_bytes(log.trusted_root())
    policy = pdir / "policy.yaml"
    policy.write_text(
        "version: 1\ndefault: deny\n"
        f"registries: ['{registry.host}/prov/*']\n"
        "signatures:\n  trusted_root: trusted_root.json\n"
        "  rules:\n    - name: team\n      keys: [keys/team.pub]\n"
    )
    pinned = push(registry, "prov/bundled", "v1")
    with RegistryClient(plain_http=(registry.host,)) as client:
        raw, _, _ = client.get_manifest(pinned)
    key = load_private_key(private)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    refer(registry, pinned, BUNDLE_ARTIFACT_TYPES[0], log.key_bundle(raw, key))
    w = World(registry, tmp_path / "home", policy, private, private)
    r = w.run("--json", "--image", str(pinned))
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(GREETING + "\n")
    record = json.loads(r.stdout[len(GREETING) + 1 :])
    (verification,) = w.trace(record["run_id"])["verification"]  # type: ignore[misc]
    assert verification["data"]["found_via"] == "referrer"
    assert verification["data"]["signer_kind"] == "key"
