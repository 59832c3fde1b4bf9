"""The live elicitation channel: form answers decide only what the policy lets them decide."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from pydantic import ValidationError

from stockade.approvals import ApprovalStore, Event, State, StoreApprover
from stockade.approvals._elicit import ElicitMode
from stockade.approvals._elicit_channel import ElicitationChannel, ElicitationFailed
from stockade.models import Category, Decision
from stockade.policy._schema import Approvals
from stockade.testing import FakeClock

from .conftest import POLICY, make_call, make_request

PAGE = "https://127.0.0.1:8443/approvals"
BOTH: frozenset[ElicitMode] = frozenset({"form", "url"})


class Client:
    """The agent's side: records every request and answers with a canned result (or fails)."""

    def __init__(self, answer: dict[str, Any] | None) -> None:
        self.answer = answer
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def send(self, method: str, params: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        self.sent.append((method, params))
        if self.answer is None:
            raise ElicitationFailed(f"no answer within {timeout_s:g}s", "answer sooner")
        return self.answer


def channel(
    store: ApprovalStore,
    clock: FakeClock,
    client: Client,
    caps: dict[str, Any] | None,
    *,
    allowed: frozenset[ElicitMode] = BOTH,
    page: str | None = PAGE,
) -> ElicitationChannel:
    ch = ElicitationChannel(
        store, clock, allowed=lambda c: allowed, page_url=page, timeout_s=5, new_id=lambda: "e1"
    )
    ch.bind(client.send, caps)
    return ch


def pending(store: ApprovalStore, clock: FakeClock, category: Category) -> str:
    call = make_call(server="cfg", tool="set", arguments={"k": "v"})
    req = make_request(clock, category=category, call=call)
    store.add(req)
    return req.id


FORM_CAPS = {"elicitation": {"form": {}}}


def test_a_form_accept_approves_a_config_change_through_the_elicitation_channel(
    store: ApprovalStore, clock: FakeClock
) -> None:
    rid = pending(store, clock, Category.CONFIG_CHANGE)
    client = Client({"action": "accept", "content": {"approve": True}})
    mode = asyncio.run(
        channel(store, clock, client, FORM_CAPS).ask(store.get(rid, now=clock.now()))
    )
    assert mode == "form"
    assert client.sent[0][0] == "elicitation/create"
    assert client.sent[0][1]["mode"] == "form"
    after = store.get(rid, now=clock.now())
    assert after.state == State.APPROVED


@pytest.mark.parametrize(
    "answer",
    [
        {"action": "decline"},
        {"action": "cancel"},
        {"action": "accept", "content": {"approve": False}},
        {"action": "accept", "content": {"approve": "true"}},
        {"action": "accept"},
        None,  # timeout / error answer
    ],
)
def test_anything_but_an_explicit_form_accept_denies(
    store: ApprovalStore, clock: FakeClock, answer: dict[str, Any] | None
) -> None:
    rid = pending(store, clock, Category.CONFIG_CHANGE)
    asyncio.run(
        channel(store, clock, Client(answer), FORM_CAPS).ask(store.get(rid, now=clock.now()))
    )
    assert store.get(rid, now=clock.now()).state == State.DENIED


@pytest.mark.guarantee("apr-elicit-channel-operator-only")
@pytest.mark.parametrize(
    "category",
    [Category.EXFILTRATION, Category.CREDENTIALS, Category.FINANCIAL, Category.PERMISSION_GRANT],
)
def test_an_operator_only_request_gets_url_mode_and_stays_pending_whatever_the_client_says(
    store: ApprovalStore, clock: FakeClock, category: Category
) -> None:
    rid = pending(store, clock, category)
    client = Client({"action": "accept", "content": {"approve": True}})
    caps = {"elicitation": {"form": {}, "url": {}}}
    mode = asyncio.run(channel(store, clock, client, caps).ask(store.get(rid, now=clock.now())))
    assert mode == "url"
    params = client.sent[0][1]
    assert params["mode"] == "url"
    assert params["url"].startswith(PAGE)
    assert "token" not in params["url"]
    assert store.get(rid, now=clock.now()).state == State.PENDING


@pytest.mark.guarantee("apr-elicit-channel-operator-only")
def test_a_form_only_client_is_never_asked_about_an_exfiltration_call(
    store: ApprovalStore, clock: FakeClock
) -> None:
    rid = pending(store, clock, Category.EXFILTRATION)
    client = Client({"action": "accept", "content": {"approve": True}})
    mode = asyncio.run(
        channel(store, clock, client, FORM_CAPS).ask(store.get(rid, now=clock.now()))
    )
    assert mode is None
    assert client.sent == []
    assert store.get(rid, now=clock.now()).state == State.PENDING
    clock.advance(3600)
    assert store.get(rid, now=clock.now()).state == State.EXPIRED


@pytest.mark.guarantee("apr-elicit-channel-capability")
@pytest.mark.parametrize("caps", [None, {}, {"sampling": {}}, {"elicitation": "yes"}])
def test_a_client_without_the_capability_gets_no_elicitation(
    store: ApprovalStore, clock: FakeClock, caps: dict[str, Any] | None
) -> None:
    rid = pending(store, clock, Category.CONFIG_CHANGE)
    client = Client({"action": "accept", "content": {"approve": True}})
    mode = asyncio.run(channel(store, clock, client, caps).ask(store.get(rid, now=clock.now())))
    assert mode is None
    assert client.sent == []
    assert store.get(rid, now=clock.now()).state == State.PENDING


def test_a_category_the_policy_does_not_allow_is_never_elicited(
    store: ApprovalStore, clock: FakeClock
) -> None:
    rid = pending(store, clock, Category.CONFIG_CHANGE)
    client = Client({"action": "accept", "content": {"approve": True}})
    ch = channel(store, clock, client, FORM_CAPS, allowed=frozenset())
    assert asyncio.run(ch.ask(store.get(rid, now=clock.now()))) is None
    assert client.sent == []


def test_without_an_approval_page_url_mode_is_never_offered(
    store: ApprovalStore, clock: FakeClock
) -> None:
    rid = pending(store, clock, Category.EXFILTRATION)
    client = Client({"action": "accept"})
    caps = {"elicitation": {"url": {}}}
    ch = channel(store, clock, client, caps, page=None)
    assert asyncio.run(ch.ask(store.get(rid, now=clock.now()))) is None
    assert client.sent == []


def test_a_late_form_answer_never_overrides_an_operator_decision(
    store: ApprovalStore, clock: FakeClock
) -> None:
    rid = pending(store, clock, Category.CONFIG_CHANGE)
    req = store.get(rid, now=clock.now())
    store.transition(
        rid, Event(kind="deny", by="operator", channel="cli", at=clock.now(), reason="no")
    )
    client = Client({"action": "accept", "content": {"approve": True}})
    asyncio.run(channel(store, clock, client, FORM_CAPS).ask(req))
    assert store.get(rid, now=clock.now()).state == State.DENIED


def approver(store: ApprovalStore, clock: FakeClock, ch: ElicitationChannel) -> StoreApprover:
    return StoreApprover(
        store,
        clock,
        policy_hash=lambda: POLICY,
        timeout_for=lambda c: 2.0,
        image_digest=lambda s: "sha256:" + "b" * 64,
        poll_s=0.01,
        channel=ch,
        margin_s=0.1,
    )


def decide_through(
    store: ApprovalStore, clock: FakeClock, answer: dict[str, Any] | None, category: Category
) -> tuple[Decision, Client]:
    client = Client(answer)
    ch = ElicitationChannel(store, clock, allowed=lambda c: BOTH, page_url=PAGE, timeout_s=5)
    call = make_call(server="cfg", tool="set", arguments={"k": "v"})
    need = Decision.require_approval("changes config", category, rule="r1")

    async def go() -> Decision:
        ch.bind(client.send, {"elicitation": {"form": {}}})
        return await asyncio.to_thread(approver(store, clock, ch).decide, call, need)

    return asyncio.run(go()), client


def test_the_store_approver_asks_the_client_once_and_a_form_accept_allows_the_call(
    store: ApprovalStore, clock: FakeClock
) -> None:
    answer = {"action": "accept", "content": {"approve": True}}
    verdict, client = decide_through(store, clock, answer, Category.CONFIG_CHANGE)
    assert verdict.kind == "allow", verdict
    assert len(client.sent) == 1


def test_the_store_approver_denies_on_a_form_decline(
    store: ApprovalStore, clock: FakeClock
) -> None:
    verdict, client = decide_through(store, clock, {"action": "decline"}, Category.CONFIG_CHANGE)
    assert verdict.kind == "deny"
    assert len(client.sent) == 1


@pytest.mark.guarantee("apr-elicit-channel-operator-only")
def test_the_store_approver_never_lets_a_form_client_approve_exfiltration(
    store: ApprovalStore, clock: FakeClock
) -> None:
    answer = {"action": "accept", "content": {"approve": True}}
    verdict, client = decide_through(store, clock, answer, Category.EXFILTRATION)
    assert verdict.kind == "deny"
    assert client.sent == []


def test_the_policy_lists_elicitation_modes_per_category_and_none_by_default() -> None:
    doc = Approvals.model_validate_json(
        json.dumps({"categories": {"config_change": {"timeout_s": 30, "elicitation": ["form"]}}})
    )
    assert doc.elicitation_for(Category.CONFIG_CHANGE) == {"form"}
    assert doc.elicitation_for(Category.EXFILTRATION) == frozenset()
    plain = Approvals.model_validate_json(
        json.dumps({"categories": {"financial": {"timeout_s": 30}}})
    )
    assert "elicitation" not in plain.model_dump()["categories"]["financial"]


def test_an_unknown_elicitation_mode_in_the_policy_is_rejected() -> None:
    with pytest.raises(ValidationError):
        Approvals.model_validate_json(
            json.dumps({"categories": {"config_change": {"timeout_s": 30, "elicitation": ["sms"]}}})
        )
