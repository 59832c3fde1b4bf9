"""Every public cosign vector (shared/testdata/cosign/index.tsv) gives its expected verdict."""

from __future__ import annotations

import pytest

from stockade.supplychain import (
    IdentityMatcher,
    ReferenceMatch,
    RegistryError,
    SignatureRule,
    SignatureVerificationError,
    VerificationPolicy,
    make_payload,
    parse_payload,
    parse_reference,
    parse_signature_blob,
    read_dir_image,
    verify_image_signatures,
)
from stockade.supplychain._certs import certificate_identity
from stockade.supplychain._cosign import SignatureEvidence, SignatureLayer
from stockade.supplychain._crypto import (
    b64decode_strict,
    certificate_key,
    load_certificates,
    load_public_key,
    signature_valid,
)
from stockade.supplychain._rekor import verify_set

from .vectors import CI, COSIGN, KEYS, FixedClock, read, require_vectors

pytestmark = pytest.mark.usefixtures("_vectors")


@pytest.fixture
def _vectors() -> None:
    require_vectors()


def key_rule(key: str = "cosign.pub", **kw: object) -> SignatureRule:
    return SignatureRule(name=f"key {key}", public_keys=(read(KEYS / key),), **kw)  # type: ignore[arg-type]


def fulcio_rule(subject: str = "mitr@redhat.com", rekor: str = "rekor.pub") -> SignatureRule:
    return SignatureRule(
        name="fulcio",
        certificate_roots=(read(KEYS / "fulcio_v1.crt.pem"),),
        identities=(IdentityMatcher(subject=subject, issuer="https://github.com/login/oauth"),),
        rekor_keys=(read(KEYS / rekor),),
    )


def verify(folder: str, image: str, *rules: SignatureRule) -> SignatureEvidence:
    d = read_dir_image(CI / folder)
    return verify_image_signatures(
        d.signatures,
        manifest_digest=d.digest,
        image=parse_reference(image),
        policy=VerificationPolicy(rules=rules),
        clock=FixedClock(),
    )


SINGLE = "192.168.64.2:5000/cosign-signed-single-sample"


def test_ci_valid_accepts_with_the_signing_key() -> None:
    ev = verify("dir-img-cosign-valid", SINGLE, key_rule())
    assert ev.signer_kind == "key"
    assert ev.signed_reference == SINGLE


@pytest.mark.guarantee("image-reject-wrong-key")
def test_ci_valid_wrong_key_rejects_at_the_signature_step() -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 4 \(signature\)"):
        verify("dir-img-cosign-valid", SINGLE, key_rule("cosign2.pub"))


@pytest.mark.parametrize("image", ["testing/manifest:notlatest", "this/does-not:match"])
def test_ci_valid_wrong_reference_rejects_at_the_reference_step(image: str) -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 9 \(reference\)"):
        verify("dir-img-cosign-valid", image, key_rule())


def test_ci_valid_2_accepts_with_two_valid_signatures() -> None:
    assert verify("dir-img-cosign-valid-2", SINGLE, key_rule()).signature_index == 0


@pytest.mark.guarantee("image-any-valid-signature")
def test_ci_mixed_accepts_the_good_signature_beside_a_bad_one() -> None:
    ev = verify("dir-img-cosign-mixed", SINGLE, key_rule())
    assert ev.signature_index == 1  # signature-1 is by an unknown key, signature-2 is good


@pytest.mark.guarantee("image-reject-tampered-manifest")
def test_ci_modified_manifest_rejects_on_the_digest() -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 8 \(payload\).*docker-manifest"):
        verify("dir-img-cosign-modified-manifest", SINGLE, key_rule())


def test_ci_manifest_digest_error_rejects() -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 8 \(payload\)"):
        verify("dir-img-cosign-manifest-digest-error", SINGLE, key_rule())


def test_ci_no_manifest_rejects_for_lack_of_anything_to_bind() -> None:
    with pytest.raises(RegistryError, match="no manifest"):
        verify("dir-img-cosign-no-manifest", SINGLE, key_rule())


def test_ci_other_attachment_is_not_a_signature() -> None:
    with pytest.raises(SignatureVerificationError, match=r"step 1 \(media type\).*text/plain"):
        verify("dir-img-cosign-other-attachment", "testing/manifest:latest", key_rule())


def test_ci_valid_with_tag_accepts_under_exact_reference_matching() -> None:
    exact = key_rule(reference=ReferenceMatch(mode="exact"))
    ev = verify("dir-img-cosign-valid-with-tag", "192.168.64.2:5000/skopeo-signed:tag", exact)
    assert ev.signed_reference == "192.168.64.2:5000/skopeo-signed:tag"
    with pytest.raises(SignatureVerificationError, match=r"step 9"):
        verify("dir-img-cosign-valid-with-tag", "192.168.64.2:5000/skopeo-signed:othertag", exact)


def test_cosign_created_signatures_are_rejected_under_exact_matching() -> None:
    exact = key_rule(reference=ReferenceMatch(mode="exact"))
    with pytest.raises(SignatureVerificationError, match=r"step 9"):
        verify("dir-img-cosign-valid", SINGLE + ":latest", exact)


def test_identity_remapping_is_opt_in_per_rule() -> None:
    mirror = "mirror.example/sample/cosign-signed-single-sample"
    with pytest.raises(SignatureVerificationError, match=r"step 9"):
        verify("dir-img-cosign-valid", mirror, key_rule())
    remap = ReferenceMatch(
        mode="remap", prefix="mirror.example/sample", signed_prefix="192.168.64.2:5000"
    )
    assert verify("dir-img-cosign-valid", mirror, key_rule(reference=remap))


def test_ci_key_rekor_valid_accepts_with_the_set_verified_offline() -> None:
    rule = key_rule("cosign2.pub", rekor_keys=(read(KEYS / "rekor.pub"),), require_tlog=True)
    ev = verify("dir-img-cosign-key-rekor-valid", "192.168.64.2:5000/cosign-signed/key-1", rule)
    assert (ev.log_index, ev.integrated_time) == (11608800, 1674251859)


@pytest.mark.parametrize(
    ("key", "rekor", "step"),
    [("cosign2.pub", "cosign.pub", "step 5"), ("cosign.pub", "rekor.pub", "step 4")],
)
def test_ci_key_rekor_rejects_a_wrong_rekor_key_or_signing_key(
    key: str, rekor: str, step: str
) -> None:
    rule = key_rule(key, rekor_keys=(read(KEYS / rekor),), require_tlog=True)
    with pytest.raises(SignatureVerificationError, match=step):
        verify("dir-img-cosign-key-rekor-valid", "192.168.64.2:5000/cosign-signed/key-1", rule)


FULCIO_IMAGE = "192.168.64.2:5000/cosign-signed/fulcio-rekor-1"


def test_ci_fulcio_rekor_valid_accepts_checked_at_the_integrated_time() -> None:
    ev = verify("dir-img-cosign-fulcio-rekor-valid", FULCIO_IMAGE, fulcio_rule())
    assert ev.subject == "mitr@redhat.com"
    assert ev.issuer == "https://github.com/login/oauth"
    assert ev.log_index == 11605770


@pytest.mark.guarantee("image-reject-wrong-identity")
@pytest.mark.parametrize(
    ("rule", "step"),
    [
        (lambda: fulcio_rule(subject="someone@else.example"), "step 7"),
        (lambda: fulcio_rule(rekor="cosign.pub"), "step 5"),
    ],
)
def test_ci_fulcio_rekor_rejects_another_identity_or_rekor_key(rule: object, step: str) -> None:
    with pytest.raises(SignatureVerificationError, match=step):
        verify("dir-img-cosign-fulcio-rekor-valid", FULCIO_IMAGE, rule())  # type: ignore[operator]


def test_pki_certificates_verify_against_configured_roots_and_intermediates() -> None:
    for subject in ("qiwan@redhat.com", "myhost.example.com"):
        rule = SignatureRule(
            name="pki",
            certificate_authority="pki",
            certificate_roots=(read(KEYS / "pki_root_crts.pem"),),
            certificate_intermediates=(read(KEYS / "pki_intermediate_crts.pem"),),
            identities=(IdentityMatcher(subject=subject),),
        )
        ev = verify("dir-img-cosign-pki-valid", "localhost:5000/test", rule)
        assert ev.subject == subject


def test_pki_signature_is_rejected_when_its_root_is_not_trusted() -> None:
    rule = SignatureRule(
        name="pki",
        certificate_authority="pki",
        certificate_roots=(read(KEYS / "fulcio_v1.crt.pem"),),
        identities=(IdentityMatcher(subject="qiwan@redhat.com"),),
    )
    with pytest.raises(SignatureVerificationError, match=r"step 6"):
        verify("dir-img-cosign-pki-valid", "localhost:5000/test", rule)


def test_unknown_key_signature_rejects() -> None:
    raw = (CI / "unknown-cosign-key" / "signature-1.containers-image-raw").read_bytes()
    with pytest.raises(SignatureVerificationError, match=r"step 4"):
        verify_image_signatures(
            (parse_signature_blob("signature-1", raw),),
            manifest_digest="sha256:" + "0" * 64,
            image=parse_reference(SINGLE),
            policy=VerificationPolicy(rules=(key_rule(),)),
            clock=FixedClock(),
        )


def _fulcio_layers(drop: str) -> tuple[SignatureLayer, ...]:
    d = read_dir_image(CI / "dir-img-cosign-fulcio-rekor-valid")
    layer = d.signatures[0]
    kept = {k: v for k, v in layer.annotations.items() if k != drop}
    return (layer.model_copy(update={"annotations": kept}),)


@pytest.mark.parametrize(
    ("drop", "step"),
    [
        ("dev.sigstore.cosign/bundle", "step 5"),
        ("dev.sigstore.cosign/certificate", "step 3"),
        ("dev.sigstore.cosign/chain", "step 6"),
    ],
)
def test_fulcio_signature_without_set_cert_or_chain_rejects(drop: str, step: str) -> None:
    d = read_dir_image(CI / "dir-img-cosign-fulcio-rekor-valid")
    with pytest.raises(SignatureVerificationError, match=step):
        verify_image_signatures(
            _fulcio_layers(drop),
            manifest_digest=d.digest,
            image=parse_reference(FULCIO_IMAGE),
            policy=VerificationPolicy(rules=(fulcio_rule(),)),
            clock=FixedClock(),
        )


def test_fulcio_signature_without_chain_accepts_when_the_intermediate_is_trusted() -> None:
    d = read_dir_image(CI / "dir-img-cosign-fulcio-rekor-valid")
    chain = d.signatures[0].annotations["dev.sigstore.cosign/chain"]
    intermediate = chain.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    rule = fulcio_rule().model_copy(update={"certificate_intermediates": (intermediate,)})
    ev = verify_image_signatures(
        _fulcio_layers("dev.sigstore.cosign/chain"),
        manifest_digest=d.digest,
        image=parse_reference(FULCIO_IMAGE),
        policy=VerificationPolicy(rules=(rule,)),
        clock=FixedClock(),
    )
    assert ev.subject == "mitr@redhat.com"


def test_rekor_unit_vector_set_verifies_and_binds_the_signature() -> None:
    unit = CI / "rekor-unit"
    cert = load_certificates((unit / "rekor-cert").read_bytes(), "cert")[0]
    payload = (unit / "rekor-payload").read_bytes()
    sig = b64decode_strict((unit / "rekor-sig").read_text(), "sig")
    key = certificate_key(cert)
    assert signature_valid(key, sig, payload)
    entry = verify_set(
        "step 5",
        (unit / "rekor-set").read_bytes(),
        (load_public_key(read(KEYS / "rekor.pub")),),
        signature=sig,
        payload=payload,
        signer_key=key,
        signer_cert=cert,
    )
    assert entry.log_index == 8949589
    assert certificate_identity(cert).subjects == ("mitr@redhat.com",)
    with pytest.raises(SignatureVerificationError, match="id of a trusted Rekor key"):
        verify_set(
            "step 5",
            (unit / "rekor-set").read_bytes(),
            (load_public_key(read(KEYS / "cosign.pub")),),
            signature=sig,
            payload=payload,
            signer_key=key,
            signer_cert=cert,
        )


def test_rekor_set_does_not_bind_a_different_signature() -> None:
    unit = CI / "rekor-unit"
    cert = load_certificates((unit / "rekor-cert").read_bytes(), "cert")[0]
    with pytest.raises(SignatureVerificationError, match="logged payload hash"):
        verify_set(
            "step 5",
            (unit / "rekor-set").read_bytes(),
            (load_public_key(read(KEYS / "rekor.pub")),),
            signature=b"x",
            payload=b"another payload",
            signer_key=certificate_key(cert),
            signer_cert=cert,
        )


def test_payload_format_vector_is_emitted_byte_for_byte() -> None:
    expected = (COSIGN / "cosign-repo" / "simplesigning-payload-example.json").read_bytes().strip()
    digest = "sha256:4aa3054270f7a70b4528f2064ee90961788e1e1518703592ae4463de3b889dec"
    assert make_payload("index.docker.io/namespace/image", digest) == expected
    parsed = parse_payload("step 8", expected)
    assert parsed.manifest_digest == digest
