"""MCP elicitation as a channel: form answers never approve operator-only categories."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import (
    OPERATOR_ONLY,
    ApprovalStore,
    IllegalTransition,
    State,
    apply,
    choose_mode,
    client_modes,
    form_answer,
    form_request,
    url_request,
)
from stockade.errors import ApprovalError
from stockade.models import Category
from stockade.testing import FakeClock

from .conftest import make_request

SAFE = Category.FILE_ACCESS


def test_declared_modes_follow_the_capability_shapes() -> None:
    assert client_modes({}) == frozenset()
    assert client_modes({"elicitation": {}}) == {"form"}
    assert client_modes({"elicitation": {"url": {}}}) == {"url"}
    assert client_modes({"elicitation": {"form": {}, "url": {}}}) == {"form", "url"}
    assert client_modes({"elicitation": "yes"}) == frozenset()


@pytest.mark.guarantee("apr-elicit-form-limited")
@pytest.mark.parametrize("category", list(Category))
def test_form_mode_is_never_chosen_for_operator_only_categories(
    clock: FakeClock, category: Category
) -> None:
    req = make_request(clock, category=category)
    mode = choose_mode(req, frozenset({"form"}), frozenset({"form", "url"}))
    assert mode == (None if category in OPERATOR_ONLY else "form")
    assert choose_mode(req, frozenset({"form", "url"}), frozenset({"form", "url"})) == "url"
    assert choose_mode(req, frozenset({"form", "url"}), frozenset()) is None


@pytest.mark.guarantee("apr-elicit-form-limited")
@given(st.sampled_from(sorted(OPERATOR_ONLY)), st.booleans())
def test_a_form_answer_can_never_approve_an_operator_only_action(
    category: Category, approve: bool
) -> None:
    clock = FakeClock()
    req = make_request(clock, category=category)
    with pytest.raises(ApprovalError):
        form_request(req)
    event = form_answer(
        req, {"action": "accept", "content": {"approve": approve}}, client="agent", now=clock.now()
    )
    if event.kind == "approve":
        with pytest.raises(IllegalTransition):
            apply(req, event)
    else:
        assert apply(req, event)[0].state == State.DENIED


def test_a_form_answer_approves_a_lesser_category_only_on_an_explicit_true(
    clock: FakeClock,
) -> None:
    req = make_request(clock, category=SAFE)
    assert form_request(req)["requestedSchema"]["required"] == ["approve"]
    for response, kind in [
        ({"action": "accept", "content": {"approve": True}}, "approve"),
        ({"action": "accept", "content": {"approve": "true"}}, "deny"),
        ({"action": "accept"}, "deny"),
        ({"action": "decline"}, "deny"),
        ({"action": "cancel"}, "deny"),
        ({}, "deny"),
    ]:
        event = form_answer(req, response, client="agent", now=clock.now())
        assert event.kind == kind
        assert (event.channel, event.by) == ("elicitation", "client:agent")


def test_the_url_names_the_request_on_our_page_and_carries_no_capability(
    clock: FakeClock,
) -> None:
    req = make_request(clock, rid="apr_x/../y")
    body = url_request(req, "http://127.0.0.1:8765/", "el-1")
    assert body["url"] == "http://127.0.0.1:8765/#req-apr_x%2F..%2Fy"
    assert body["mode"] == "url"
    assert "token" not in body["url"]


def test_a_form_decision_cannot_be_remembered(store: ApprovalStore, clock: FakeClock) -> None:
    from stockade.approvals import remember_from

    req = make_request(clock, category=SAFE)
    after, _ = apply(
        req,
        form_answer(
            req, {"action": "accept", "content": {"approve": True}}, client="agent", now=clock.now()
        ),
    )
    with pytest.raises(ApprovalError, match="operator channel"):
        remember_from(
            after,
            remembered_id="r",
            pattern_kind="arguments",
            scope="client",
            by="agent",
            now=clock.now(),
            ttl_s=60,
        )
