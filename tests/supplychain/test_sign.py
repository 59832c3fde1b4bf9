"""Images signed by stockade verify under their key only; key-signed bundles verify offline."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from stockade.supplychain import (
    ANNOTATION_BUNDLE,
    ImageReferenceError,
    SignatureRule,
    SignatureVerificationError,
    TrustMaterialError,
    VerificationPolicy,
    load_private_key,
    parse_reference,
    sign_image,
    verify_bundle_with_key,
    verify_image_signatures,
)

from .fakelog import FakeLog, new_p256, public_pem
from .vectors import FixedClock

DIGEST = "sha256:" + hashlib.sha256(b"manifest").hexdigest()
IMAGE = parse_reference(f"127.0.0.1:5000/acme/tool:v1@{DIGEST}")


def _pem(key: object) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


KEYS = {
    "p256": new_p256,
    "rsa": lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ed25519": ed25519.Ed25519PrivateKey.generate,
}


def _verify(layer: object, public: bytes, image: object = IMAGE, digest: str = DIGEST) -> object:
    return verify_image_signatures(
        (layer,),  # type: ignore[arg-type]
        manifest_digest=digest,
        image=image,  # type: ignore[arg-type]
        policy=VerificationPolicy(rules=(SignatureRule(name="k", public_keys=(public.decode(),)),)),
        clock=FixedClock(),
    )


@pytest.mark.parametrize("kind", sorted(KEYS))
def test_an_image_signed_with_a_key_verifies_under_its_public_key(kind: str) -> None:
    key = KEYS[kind]()
    layer = sign_image(load_private_key(_pem(key)), IMAGE)
    payload = json.loads(layer.payload)
    assert payload["critical"]["identity"]["docker-reference"] == "127.0.0.1:5000/acme/tool"
    assert _verify(layer, public_pem(key))


@pytest.mark.guarantee("image-reject-wrong-key")
def test_a_signature_by_another_key_is_rejected() -> None:
    layer = sign_image(load_private_key(_pem(new_p256())), IMAGE)
    with pytest.raises(SignatureVerificationError, match=r"step 4"):
        _verify(layer, public_pem(new_p256()))


@pytest.mark.guarantee("image-reject-tampered-manifest")
def test_a_signature_for_another_digest_is_rejected() -> None:
    key = new_p256()
    layer = sign_image(load_private_key(_pem(key)), IMAGE)
    other = "sha256:" + hashlib.sha256(b"tampered").hexdigest()
    with pytest.raises(SignatureVerificationError, match=r"step 8"):
        _verify(layer, public_pem(key), IMAGE.with_digest(other), other)


def test_an_edited_payload_no_longer_verifies() -> None:
    key = new_p256()
    layer = sign_image(load_private_key(_pem(key)), IMAGE)
    edited = layer.model_copy(update={"payload": layer.payload.replace(b"acme", b"acmf")})
    with pytest.raises(SignatureVerificationError, match=r"step 4"):
        _verify(edited, public_pem(key))


def test_signing_refuses_a_tag_only_reference_and_unreadable_keys() -> None:
    key = load_private_key(_pem(new_p256()))
    with pytest.raises(ImageReferenceError, match="no sha256 digest"):
        sign_image(key, parse_reference("127.0.0.1:5000/acme/tool:v1"))
    with pytest.raises(TrustMaterialError):
        # pragma: allowlist nextline secret
        load_private_key(b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")


def test_a_key_signature_with_a_set_from_the_test_log_verifies_when_required() -> None:
    log, key = FakeLog(), new_p256()
    layer = sign_image(load_private_key(_pem(key)), IMAGE)
    sig = base64.b64decode(layer.annotations["dev.cosignproject.cosign/signature"])
    bundle = log.cosign_bundle(sig, layer.payload, public_pem(key))
    with_set = layer.model_copy(
        update={"annotations": {**layer.annotations, ANNOTATION_BUNDLE: bundle}}
    )
    rule = SignatureRule(
        name="k+log",
        public_keys=(public_pem(key).decode(),),
        rekor_keys=(public_pem(log.key).decode(),),
        require_tlog=True,
    )
    policy = VerificationPolicy(rules=(rule,))
    ev = verify_image_signatures(
        (with_set,), manifest_digest=DIGEST, image=IMAGE, policy=policy, clock=FixedClock()
    )
    assert ev.log_index == 101
    with pytest.raises(SignatureVerificationError, match=r"step 5.*no Rekor bundle"):
        verify_image_signatures(
            (layer,), manifest_digest=DIGEST, image=IMAGE, policy=policy, clock=FixedClock()
        )


def test_a_key_signed_bundle_verifies_offline_and_binds_the_artifact() -> None:
    log, key = FakeLog(), new_p256()
    artifact = b"hello, stockade\n"
    bundle = log.key_bundle(artifact, key)
    ev = verify_bundle_with_key(
        bundle, artifact, key_pem=public_pem(key), trusted_root=log.trusted_root()
    )
    assert ev.artifact_digest == "sha256:" + hashlib.sha256(artifact).hexdigest()
    assert verify_bundle_with_key(
        bundle, ev.artifact_digest, key_pem=public_pem(key), trusted_root=log.trusted_root()
    )
    with pytest.raises(SignatureVerificationError, match=r"step 3"):
        verify_bundle_with_key(
            bundle, b"other", key_pem=public_pem(key), trusted_root=log.trusted_root()
        )
    with pytest.raises(SignatureVerificationError, match=r"step 4"):
        verify_bundle_with_key(
            bundle, artifact, key_pem=public_pem(new_p256()), trusted_root=log.trusted_root()
        )
    with pytest.raises(SignatureVerificationError, match=r"step 5"):
        verify_bundle_with_key(
            bundle, artifact, key_pem=public_pem(key), trusted_root=FakeLog().trusted_root()
        )


_SIGNED_KEY = new_p256()
_SIGNED = sign_image(load_private_key(_pem(_SIGNED_KEY)), IMAGE)


@pytest.mark.guarantee("image-reject-tampered-manifest")
@given(st.data())
def test_any_single_byte_edit_of_a_signed_payload_fails_verification(data: st.DataObject) -> None:
    payload = bytearray(_SIGNED.payload)
    i = data.draw(st.integers(0, len(payload) - 1))
    payload[i] = data.draw(st.integers(0, 255).filter(lambda b: b != payload[i]))
    edited = _SIGNED.model_copy(update={"payload": bytes(payload)})
    with pytest.raises(SignatureVerificationError):
        _verify(edited, public_pem(_SIGNED_KEY))
