"""verify_provenance (pure, over already-fetched attestations): signatures, rules, anchoring."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.supplychain import (
    Attestations,
    ProvenanceError,
    ProvenancePolicy,
    SignatureRule,
    verify_provenance,
)

from .attach import BUILDER, SOURCE, envelope, statement
from .fakelog import new_p256, public_pem

DIGEST = "sha256:" + "5" * 64
KEY = new_p256()
POLICY = ProvenancePolicy(builder_id=BUILDER, source_repository=SOURCE)


def rule(provenance: ProvenancePolicy | None = POLICY, key: object = KEY) -> SignatureRule:
    return SignatureRule(name="ci", public_keys=(public_pem(key).decode(),), provenance=provenance)


def found(*envs: bytes) -> Attestations:
    return Attestations(envelopes=envs)


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_key_signed_envelope_for_the_digest_passes_under_its_rule() -> None:
    ev = verify_provenance(found(envelope(statement(DIGEST), KEY)), digest=DIGEST, rules=(rule(),))
    assert (ev.builder_id, ev.source_repository, ev.source) == (BUILDER, SOURCE, "att-tag")


@pytest.mark.guarantee("image-provenance-run-gate")
def test_an_attestation_signed_under_a_rule_without_provenance_never_satisfies_one_with_it() -> (
    None
):
    other = new_p256()
    rules = (
        rule(),
        SignatureRule(name="plain", public_keys=(public_pem(other).decode(),)),
    )
    with pytest.raises(ProvenanceError, match="no signature that verifies"):
        verify_provenance(found(envelope(statement(DIGEST), other)), digest=DIGEST, rules=rules)


def test_no_rule_with_provenance_is_refused_rather_than_skipped() -> None:
    with pytest.raises(ProvenanceError, match="no rule with provenance"):
        verify_provenance(found(), digest=DIGEST, rules=(rule(None),))


@pytest.mark.guarantee("image-provenance-run-gate")
def test_a_good_attestation_next_to_bad_ones_passes_and_bad_ones_alone_list_every_reason() -> None:
    bad = envelope(statement(DIGEST, builder="https://evil/b"), KEY)
    good = envelope(statement(DIGEST), KEY)
    assert verify_provenance(found(bad, good), digest=DIGEST, rules=(rule(),))
    with pytest.raises(ProvenanceError) as info:
        verify_provenance(found(bad, b"not json"), digest=DIGEST, rules=(rule(),))
    assert "provenance builder" in info.value.what
    assert "not JSON" in info.value.what


def test_a_payload_type_other_than_in_toto_is_refused() -> None:
    doc = json.loads(envelope(statement(DIGEST), KEY))
    doc["payloadType"] = "text/plain"
    with pytest.raises(ProvenanceError, match="payloadType 'text/plain'"):
        verify_provenance(found(json.dumps(doc).encode()), digest=DIGEST, rules=(rule(),))


@pytest.mark.guarantee("image-provenance-run-gate")
@settings(max_examples=60, deadline=None)
@given(st.data())
def test_any_single_byte_change_to_the_signed_statement_is_refused(data: st.DataObject) -> None:
    payload = statement(DIGEST)
    env = json.loads(envelope(payload, KEY))
    i = data.draw(st.integers(0, len(payload) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = bytearray(payload)
    changed[i] ^= flip
    env["payload"] = base64.b64encode(bytes(changed)).decode()
    with pytest.raises(ProvenanceError, match="no signature that verifies"):
        verify_provenance(found(json.dumps(env).encode()), digest=DIGEST, rules=(rule(),))


@given(st.text(min_size=1, max_size=20).filter(lambda s: "\n" not in s))
@settings(max_examples=60, deadline=None)
def test_a_regex_rule_matches_the_whole_builder_never_a_prefix_or_suffix(extra: str) -> None:
    p = ProvenancePolicy(builder_regex="https://builder\\.example/ci", source_repository=SOURCE)
    assert p.builder_matches("https://builder.example/ci")
    assert not p.builder_matches("https://builder.example/ci" + extra)
    assert not p.builder_matches(extra + "https://builder.example/ci")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source_repository": SOURCE},
        {"builder_id": "b", "builder_regex": "b", "source_repository": SOURCE},
        {"builder_id": "b"},
        {"builder_regex": "(", "source_repository": SOURCE},
    ],
)
def test_a_provenance_policy_needs_one_builder_and_one_source_form(kwargs: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"exactly one|does not compile"):
        ProvenancePolicy(**kwargs)
