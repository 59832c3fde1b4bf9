"""Keyless (Fulcio-style) signatures with a CA and a log made in the test, via trusted_root.json."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.supplychain import (
    ANNOTATION_BUNDLE,
    ANNOTATION_CERTIFICATE,
    ANNOTATION_CHAIN,
    ANNOTATION_SIGNATURE,
    SIMPLESIGNING_MEDIA_TYPE,
    IdentityMatcher,
    SignatureLayer,
    SignatureRule,
    SignatureVerificationError,
    VerificationPolicy,
    make_payload,
    parse_reference,
    read_trusted_root,
    verify_image_signatures,
)

from .fakelog import FakeFulcio, FakeLog
from .vectors import FixedClock

DIGEST = "sha256:" + "4" * 64
IMAGE = parse_reference(f"ghcr.io/acme/tool:v1@{DIGEST}")
ISSUER = "https://issuer.example"
SIGNED_AT = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
DEFAULT_IDENTITY = {"subject": "dev@acme.example", "issuer": ISSUER}


def signed_layer(
    ca: FakeFulcio,
    log: FakeLog,
    *,
    email: str = "dev@acme.example",
    v1: bool = False,
    code_signing: bool = True,
    logged_at: datetime = SIGNED_AT,
    chain: bool = True,
) -> SignatureLayer:
    key, cert = ca.leaf(email, ISSUER, at=SIGNED_AT, v1=v1, code_signing=code_signing)
    payload = make_payload(IMAGE.name, DIGEST)
    sig = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    cert_pem = ca.pem(cert)
    bundle = log.cosign_bundle(sig, payload, cert_pem.encode(), int(logged_at.timestamp()))
    annotations = {
        ANNOTATION_SIGNATURE: base64.b64encode(sig).decode(),
        ANNOTATION_CERTIFICATE: cert_pem,
        ANNOTATION_BUNDLE: bundle,
    }
    if chain:
        annotations[ANNOTATION_CHAIN] = ca.pem(ca.intermediate) + ca.pem(ca.root)
    return SignatureLayer(
        media_type=SIMPLESIGNING_MEDIA_TYPE, payload=payload, annotations=annotations
    )


def rule_from_root(root_json: bytes, **ident: str) -> SignatureRule:
    material = read_trusted_root(root_json)
    return SignatureRule(
        name="keyless",
        certificate_roots=material.fulcio_roots,
        certificate_intermediates=material.fulcio_intermediates,
        rekor_keys=material.rekor_pems,
        identities=(
            IdentityMatcher(**(ident or {"subject": "dev@acme.example", "issuer": ISSUER})),
        ),
    )


def verify(layer: SignatureLayer, rule: SignatureRule) -> object:
    return verify_image_signatures(
        (layer,),
        manifest_digest=DIGEST,
        image=IMAGE,
        policy=VerificationPolicy(rules=(rule,)),
        clock=FixedClock(datetime(2030, 1, 1, tzinfo=UTC)),  # long after the leaf expired
    )


@pytest.mark.parametrize("v1", [False, True])
def test_a_keyless_signature_verifies_at_the_log_time_with_v1_or_v2_issuer(v1: bool) -> None:
    ca, log = FakeFulcio(), FakeLog()
    ev = verify(signed_layer(ca, log, v1=v1), rule_from_root(ca.trusted_root(log)))
    assert ev.subject == "dev@acme.example"  # type: ignore[attr-defined]
    assert ev.issuer == ISSUER  # type: ignore[attr-defined]


@pytest.mark.guarantee("image-reject-wrong-identity")
@pytest.mark.parametrize(
    "ident",
    [
        {"subject": "dev@acme.example", "issuer": "https://other.example"},
        {"subject": "ops@acme.example", "issuer": ISSUER},
        {"subject_regex": "dev@acme", "issuer": ISSUER},  # anchored: must match the whole SAN
        {"subject_regex": ".*", "issuer_regex": "https://issuer"},
    ],
)
def test_other_identities_or_issuers_are_rejected(ident: dict[str, str]) -> None:
    ca, log = FakeFulcio(), FakeLog()
    with pytest.raises(SignatureVerificationError, match=r"step 7 \(identity\)"):
        verify(signed_layer(ca, log), rule_from_root(ca.trusted_root(log), **ident))


def test_a_certificate_from_another_ca_is_rejected_even_with_its_own_chain() -> None:
    ca, rogue, log = FakeFulcio(), FakeFulcio("rogue"), FakeLog()
    with pytest.raises(SignatureVerificationError, match=r"step 6"):
        verify(signed_layer(rogue, log), rule_from_root(ca.trusted_root(log)))


def test_a_leaf_logged_outside_its_validity_or_without_code_signing_is_rejected() -> None:
    ca, log = FakeFulcio(), FakeLog()
    rule = rule_from_root(ca.trusted_root(log))
    late = signed_layer(ca, log, logged_at=datetime(2025, 6, 2, tzinfo=UTC))
    with pytest.raises(SignatureVerificationError, match=r"step 6.*validity"):
        verify(late, rule)
    with pytest.raises(SignatureVerificationError, match=r"step 6.*codeSigning"):
        verify(signed_layer(ca, log, code_signing=False), rule)


def test_the_intermediate_from_the_trusted_root_completes_a_chainless_signature() -> None:
    ca, log = FakeFulcio(), FakeLog()
    assert verify(signed_layer(ca, log, chain=False), rule_from_root(ca.trusted_root(log)))


def test_a_set_from_an_untrusted_log_is_rejected() -> None:
    ca, log, other = FakeFulcio(), FakeLog(), FakeLog()
    with pytest.raises(SignatureVerificationError, match=r"step 5"):
        verify(signed_layer(ca, other), rule_from_root(ca.trusted_root(log)))
