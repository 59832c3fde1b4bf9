"""A cached verification record is usable only intact, for the same digest and the same policy."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from hypothesis import given
from hypothesis import strategies as st

from stockade.supplychain import (
    SealedRecord,
    SignatureRule,
    SignatureVerificationError,
    VerificationPolicy,
    open_record,
    policy_hash,
    seal_record,
)
from stockade.supplychain._cosign import SignatureEvidence

from .fakelog import new_p256, public_pem
from .vectors import FixedClock

DIGEST = "sha256:" + "d" * 64
POLICY = VerificationPolicy(
    rules=(SignatureRule(name="k", public_keys=(public_pem(new_p256()).decode(),)),)
)
EVIDENCE = SignatureEvidence(
    manifest_digest=DIGEST,
    rule="k",
    signer_kind="key",
    key_id="sha256:" + "e" * 64,
    signed_reference="ghcr.io/acme/tool",
    signature_index=0,
)
KEY = ed25519.Ed25519PrivateKey.generate()


def sealed() -> SealedRecord:
    return seal_record(KEY, evidence=EVIDENCE, policy=POLICY, clock=FixedClock())


@pytest.mark.guarantee("image-cached-record")
def test_an_intact_record_for_the_same_digest_and_policy_opens() -> None:
    record = open_record(sealed(), KEY.public_key(), digest=DIGEST, policy=POLICY)
    assert record.evidence == EVIDENCE
    assert record.policy_hash == policy_hash(POLICY)


@pytest.mark.guarantee("image-cached-record")
def test_another_digest_policy_or_signer_key_refuses_the_record() -> None:
    s = sealed()
    with pytest.raises(SignatureVerificationError, match="got digest"):
        open_record(s, KEY.public_key(), digest="sha256:" + "0" * 64, policy=POLICY)
    stricter = POLICY.model_copy(
        update={"rules": (POLICY.rules[0].model_copy(update={"name": "k2"}),)}
    )
    with pytest.raises(SignatureVerificationError, match="got policy"):
        open_record(s, KEY.public_key(), digest=DIGEST, policy=stricter)
    forger = ed25519.Ed25519PrivateKey.generate()
    forged = seal_record(forger, evidence=EVIDENCE, policy=POLICY, clock=FixedClock())
    with pytest.raises(SignatureVerificationError, match="bad signature"):
        open_record(forged, KEY.public_key(), digest=DIGEST, policy=POLICY)


@pytest.mark.guarantee("image-cached-record")
@given(st.sampled_from(["rule", "key_id", "signed_reference"]), st.text(min_size=1, max_size=8))
def test_any_edit_of_the_stored_evidence_breaks_the_seal(field: str, value: str) -> None:
    s = sealed()
    edited_ev = EVIDENCE.model_copy(update={field: getattr(EVIDENCE, field) + value})
    edited = s.model_copy(update={"record": s.record.model_copy(update={"evidence": edited_ev})})
    with pytest.raises(SignatureVerificationError, match="bad signature"):
        open_record(edited, KEY.public_key(), digest=DIGEST, policy=POLICY)
