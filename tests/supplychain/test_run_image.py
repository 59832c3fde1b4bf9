"""image_gate + prepare_image: a policy file's signature rules, enforced against a real registry."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.policy import load_policy
from stockade.supplychain import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    SIMPLESIGNING_MEDIA_TYPE,
    ImageReference,
    ImageReferenceError,
    RegistryClient,
    SignatureLayer,
    SignatureVerificationError,
    image_evidence,
    image_gate,
    make_payload,
    prepare_image,
    push_signature,
)

from .fakelog import FakeFulcio, FakeLog
from .images import push_image
from .vectors import FixedClock

pytestmark = [pytest.mark.registry]

ISSUER = "https://issuer.example"
SIGNED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def _keyless_layer(ca: FakeFulcio, log: FakeLog, ref: ImageReference, email: str) -> SignatureLayer:
    assert ref.digest is not None
    key, cert = ca.leaf(email, ISSUER, at=SIGNED_AT)
    payload = make_payload(ref.name, ref.digest)
    sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    cert_pem = ca.pem(cert)
    bundle = log.cosign_bundle(sig, payload, cert_pem.encode(), int(SIGNED_AT.timestamp()))
    return SignatureLayer(
        media_type=SIMPLESIGNING_MEDIA_TYPE,
        payload=payload,
        annotations={
            ANNOTATION_SIGNATURE: base64.b64encode(sig).decode(),
            ANNOTATION_CERTIFICATE: cert_pem,
            ANNOTATION_BUNDLE: bundle,
            ANNOTATION_CHAIN: ca.pem(ca.intermediate) + ca.pem(ca.root),
        },
    )


def _policy(tmp_path: Path, registry: str, identity: str, *, require_digest: bool = True) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    f = tmp_path / "policy.yaml"
    f.write_text(
        "version: 1\ndefault: deny\n"
        f"registries: ['{registry}/keyless/*']\n"
        "signatures:\n"
        f"  require_digest: {str(require_digest).lower()}\n"
        "  trusted_root: trusted_root.json\n"
        "  rules:\n    - name: ci\n      identities:\n"
        f"        - {identity}\n"
        "servers:\n"
        f"  - name: app\n    image: {registry}/keyless/app@sha256:{'0' * 64}\n"
        "    verify: [ci]\n"
        f"  - name: bare\n    image: {registry}/keyless/app@sha256:{'0' * 64}\n"
    )
    return f


@pytest.fixture
def signed(registry: str) -> tuple[FakeFulcio, FakeLog, ImageReference]:
    ca, log = FakeFulcio(), FakeLog()
    with RegistryClient(plain_http=(registry,)) as client:
        ref, _ = push_image(client, f"{registry}/keyless/app", "v1", {"etc/hello": b"hi"})
        push_signature(client, ref, _keyless_layer(ca, log, ref, "dev@acme.example"))
    return ca, log, ref


def _prepare(registry: str, policy_file: Path, text: str, tmp_path: Path) -> object:
    gate = image_gate(load_policy(policy_file), "app")
    with RegistryClient(plain_http=(registry,)) as client:
        return prepare_image(
            client,
            text,
            gate,
            store_root=tmp_path / "oci",
            cache=tmp_path / "rootfs",
            clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),
            command=("/bin/true",),
        )


@pytest.mark.guarantee("image-run-signed-on-gvisor")
def test_a_keyless_identity_from_the_policy_verifies_and_its_evidence_names_the_signer(
    registry: str, signed: tuple[FakeFulcio, FakeLog, ImageReference], tmp_path: Path
) -> None:
    ca, log, ref = signed
    pol = _policy(tmp_path / "p", registry, f"{{subject: dev@acme.example, issuer: '{ISSUER}'}}")
    (tmp_path / "p" / "trusted_root.json").write_bytes(ca.trusted_root(log))
    prepared = _prepare(registry, pol, str(ref), tmp_path)
    ((_, verification), (_, image), _) = image_evidence(prepared, str(ref), "t")  # type: ignore[arg-type]
    assert verification["subject"] == "dev@acme.example"
    assert verification["issuer"] == ISSUER
    assert isinstance(verification["log_index"], int)
    assert verification["integrated_time"] == int(SIGNED_AT.timestamp())
    assert verification["registry_rule"] == f"{registry}/keyless/*"
    assert image["digest"] == ref.digest
    assert (Path(image["rootfs"]) / "etc" / "hello").read_bytes() == b"hi"


@pytest.mark.guarantee("image-reject-wrong-identity")
@pytest.mark.parametrize(
    "identity",
    [
        "{subject: ops@acme.example, issuer: 'https://issuer.example'}",
        "{subject: dev@acme.example, issuer: 'https://other.example'}",
        "{subject_regex: 'dev@acme', issuer: 'https://issuer.example'}",
    ],
)
def test_a_keyless_signature_by_another_identity_is_refused(
    registry: str,
    signed: tuple[FakeFulcio, FakeLog, ImageReference],
    tmp_path: Path,
    identity: str,
) -> None:
    ca, log, ref = signed
    pol = _policy(tmp_path / "p", registry, identity)
    (tmp_path / "p" / "trusted_root.json").write_bytes(ca.trusted_root(log))
    with pytest.raises(SignatureVerificationError, match="identity"):
        _prepare(registry, pol, str(ref), tmp_path)
    assert not (tmp_path / "rootfs").exists()


@pytest.mark.guarantee("image-reject-unpinned")
def test_a_tag_is_refused_before_any_request_when_a_digest_is_required(
    registry: str, signed: tuple[FakeFulcio, FakeLog, ImageReference], tmp_path: Path
) -> None:
    ca, log, _ = signed
    pol = _policy(tmp_path / "p", registry, f"{{subject: dev@acme.example, issuer: '{ISSUER}'}}")
    (tmp_path / "p" / "trusted_root.json").write_bytes(ca.trusted_root(log))
    with pytest.raises(ImageReferenceError, match="tag-only reference"):
        _prepare(registry, pol, f"{registry}/keyless/app:v1", tmp_path)


@pytest.mark.guarantee("image-server-without-rule-refused")
def test_the_gate_of_a_server_without_rules_refuses(
    registry: str, signed: tuple[FakeFulcio, FakeLog, ImageReference], tmp_path: Path
) -> None:
    ca, log, _ = signed
    pol = _policy(tmp_path / "p", registry, f"{{subject: dev@acme.example, issuer: '{ISSUER}'}}")
    (tmp_path / "p" / "trusted_root.json").write_bytes(ca.trusted_root(log))
    with pytest.raises(SignatureVerificationError, match="names no signature rule"):
        image_gate(load_policy(pol), "bare")
