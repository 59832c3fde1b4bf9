"""StoreApprover: records a pending request, waits (bounded) for an operator, re-checks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stockade.approvals import ApprovalStore, Event, State, StoreApprover
from stockade.models import Approver, Category, Decision
from stockade.testing import FakeClock, MemoryAuditSink

from .conftest import POLICY, make_call

ASK = Decision.require_approval("sink after untrusted input", Category.EXFILTRATION, rule="r")


class Operator:
    """Plays an operator acting through the store during the approver's wait."""

    def __init__(self, store: ApprovalStore, clock: FakeClock) -> None:
        self.store = store
        self.clock = clock
        self.action: Callable[[str], None] | None = None
        self.waits = 0

    def wait(self, seconds: float) -> None:
        self.waits += 1
        self.clock.advance(seconds)
        pending = self.store.list(now=self.clock.now(), states=(State.PENDING,))
        if self.action is not None and pending:
            self.action(pending[0].id)
            self.action = None

    def decide(self, kind: str, by: str = "alice") -> Callable[[str], None]:
        def act(rid: str) -> None:
            self.store.transition(
                rid,
                Event.model_validate(
                    {"kind": kind, "by": by, "channel": "web", "at": self.clock.now()}
                ),
            )

        return act


def approver(
    store: ApprovalStore, clock: FakeClock, op: Operator, policy: list[str] | None = None
) -> StoreApprover:
    hashes = policy if policy is not None else [POLICY]
    return StoreApprover(
        store,
        clock,
        policy_hash=lambda: hashes[-1],
        timeout_for=lambda c: 30.0 if c == Category.EXFILTRATION else 300.0,
        image_digest=lambda s: "sha256:img",
        poll_s=1.0,
        wait=op.wait,
    )


def test_it_implements_the_approver_protocol(store: ApprovalStore, clock: FakeClock) -> None:
    assert isinstance(approver(store, clock, Operator(store, clock)), Approver)


@pytest.mark.guarantee("apr-operator-decides")
def test_an_operator_approval_allows_the_call_once(
    store: ApprovalStore, clock: FakeClock, sink: MemoryAuditSink
) -> None:
    op = Operator(store, clock)
    op.action = op.decide("approve")
    answer = approver(store, clock, op).decide(make_call(), ASK)
    assert answer.kind == "allow"
    assert "alice via web" in answer.reason
    [req] = store.list(now=clock.now())
    assert req.state == State.CONSUMED
    assert [e.type for e in sink.events] == [
        "approval.requested",
        "approval.approved",
        "approval.consumed",
    ]


def test_an_operator_denial_denies(store: ApprovalStore, clock: FakeClock) -> None:
    op = Operator(store, clock)
    op.action = op.decide("deny", by="bob")
    answer = approver(store, clock, op).decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "bob" in answer.reason


@pytest.mark.guarantee("apr-timeout-denies")
def test_no_answer_denies_at_the_category_deadline(store: ApprovalStore, clock: FakeClock) -> None:
    op = Operator(store, clock)
    answer = approver(store, clock, op).decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "expired" in answer.reason
    assert 29 <= op.waits <= 31  # the 30 s exfiltration timeout at 1 s per poll
    assert store.list(now=clock.now())[0].state == State.EXPIRED


def test_a_frozen_clock_still_ends_the_wait_and_denies(store: ApprovalStore) -> None:
    clock = FakeClock()
    rounds: list[float] = []
    a = StoreApprover(
        store,
        clock,
        policy_hash=lambda: POLICY,
        timeout_for=lambda c: 5.0,
        poll_s=1.0,
        wait=rounds.append,
    )
    assert a.decide(make_call(), ASK).kind == "deny"
    assert len(rounds) <= 7
    assert store.list(now=clock.now())[0].state == State.CANCELLED


@pytest.mark.guarantee("apr-policy-change-voids")
def test_a_policy_change_between_approval_and_dispatch_voids_the_approval(
    store: ApprovalStore, clock: FakeClock
) -> None:
    op = Operator(store, clock)
    hashes = [POLICY]

    def approve_then_change(rid: str) -> None:
        op.decide("approve")(rid)
        hashes.append("sha256:" + "c" * 64)

    op.action = approve_then_change
    answer = approver(store, clock, op, hashes).decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "policy changed" in answer.reason
    assert store.list(now=clock.now())[0].state == State.CANCELLED


@pytest.mark.guarantee("apr-kill-switch")
def test_while_the_kill_switch_is_engaged_new_calls_are_denied_without_a_request(
    store: ApprovalStore, clock: FakeClock
) -> None:
    store.set_kill(engaged=True, by="ops", reason="incident", now=clock.now())
    answer = approver(store, clock, Operator(store, clock)).decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "kill switch" in answer.reason
    assert store.list(now=clock.now()) == []


def test_the_kill_switch_during_the_wait_denies_the_pending_call(
    store: ApprovalStore, clock: FakeClock
) -> None:
    op = Operator(store, clock)
    op.action = lambda rid: (
        store.set_kill(engaged=True, by="ops", reason="stop", now=clock.now()) and None
    )
    answer = approver(store, clock, op).decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "cancelled" in answer.reason


def test_an_approver_error_answers_deny(store: ApprovalStore, clock: FakeClock) -> None:
    def broken(c: Category) -> float:
        return -1.0

    a = StoreApprover(store, clock, policy_hash=lambda: POLICY, timeout_for=broken)
    answer = a.decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "approval failed" in answer.reason


def test_calls_differing_in_any_bound_field_get_distinct_requests(
    store: ApprovalStore, clock: FakeClock
) -> None:
    op = Operator(store, clock)
    a = approver(store, clock, op)
    for call in (make_call(), make_call(session="s2"), make_call(arguments={"to": "x"})):
        a.decide(call, ASK)
    digests = {r.digest for r in store.list(now=clock.now())}
    assert len(digests) == 3
