"""The 2026-07-28 input-required flow: integrity-protected requestState, bound to the call."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import (
    INPUT_KEY,
    CallBinding,
    RequestStateCodec,
    apply,
    input_required,
    retry_event,
)
from stockade.errors import ApprovalError
from stockade.models import Category
from stockade.testing import FakeClock

from .conftest import POLICY, make_call, make_request

KEY = b"k" * 32
codec = RequestStateCodec(KEY)


def test_the_result_asks_for_an_elicitation_and_carries_sealed_state(clock: FakeClock) -> None:
    req = make_request(clock, category=Category.FILE_ACCESS)
    res = input_required(req, mode="form", codec=codec)
    assert res["resultType"] == "input_required"
    assert res["inputRequests"][INPUT_KEY]["method"] == "elicitation/create"
    opened = codec.open(res["requestState"], digest=req.digest, client="agent", now=clock.now())
    assert opened == (req.id, "form")
    url = input_required(req, mode="url", codec=codec, page_url="http://127.0.0.1:8765")
    assert url["inputRequests"][INPUT_KEY]["params"]["mode"] == "url"


@pytest.mark.guarantee("apr-mrtr-state")
def test_every_single_character_change_to_the_state_is_refused(clock: FakeClock) -> None:
    req = make_request(clock)
    state = codec.seal(req, "url")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.="
    opened = []
    for i in range(len(state)):
        for ch in alphabet:
            tampered = state[:i] + ch + state[i + 1 :]
            if tampered == state:
                continue
            try:
                codec.open(tampered, digest=req.digest, client="agent", now=clock.now())
            except ApprovalError:
                continue
            opened.append((i, ch))
    assert opened == []


@given(st.binary(max_size=64))
def test_appending_anything_is_refused(extra: bytes) -> None:
    clock = FakeClock()
    req = make_request(clock)
    state = codec.seal(req, "url") + extra.decode("latin-1")
    if extra:
        with pytest.raises(ApprovalError):
            codec.open(state, digest=req.digest, client="agent", now=clock.now())


@pytest.mark.guarantee("apr-mrtr-state")
def test_state_never_moves_to_another_call_or_client_nor_outlives_its_key_or_expiry(
    clock: FakeClock,
) -> None:
    req = make_request(clock, timeout_s=60)
    state = codec.seal(req, "url")
    other = CallBinding.of(make_call(arguments={"to": "x"}), image_digest=None, policy_hash=POLICY)
    with pytest.raises(ApprovalError, match="different call"):
        codec.open(state, digest=other.digest, client="agent", now=clock.now())
    with pytest.raises(ApprovalError):
        RequestStateCodec(b"j" * 32).open(state, digest=req.digest, client="agent", now=clock.now())
    with pytest.raises(ApprovalError, match="another client"):
        codec.open(state, digest=req.digest, client="intruder", now=clock.now())
    clock.advance(60)
    with pytest.raises(ApprovalError, match="expired"):
        codec.open(state, digest=req.digest, client="agent", now=clock.now())
    for junk in (None, 5, "", "a.b.c", "!!.??", "x" * 5000):
        with pytest.raises(ApprovalError):
            codec.open(junk, digest=req.digest, client="agent", now=clock.now())
    with pytest.raises(ApprovalError):
        RequestStateCodec(b"short")


def test_a_retry_carries_the_form_answer_and_url_mode_decides_nothing(clock: FakeClock) -> None:
    req = make_request(clock, category=Category.FILE_ACCESS)
    params = {"inputResponses": {INPUT_KEY: {"action": "accept", "content": {"approve": True}}}}
    event = retry_event(req, params, mode="form", client="agent", now=clock.now())
    assert event is not None
    assert apply(req, event)[0].state.value == "approved"
    assert retry_event(req, {}, mode="form", client="agent", now=clock.now()).kind == "deny"  # type: ignore[union-attr]
    assert retry_event(req, params, mode="url", client="agent", now=clock.now()) is None


def test_an_exfiltration_request_cannot_be_asked_in_form_mode(clock: FakeClock) -> None:
    with pytest.raises(ApprovalError):
        input_required(make_request(clock), mode="form", codec=codec)
