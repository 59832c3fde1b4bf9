"""The approval state machine: a transition table; illegal events raise and change nothing."""

from __future__ import annotations

import contextlib
import itertools
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import (
    TERMINAL,
    TRANSITIONS,
    ApprovalRequest,
    Event,
    IllegalTransition,
    State,
    apply,
    expire_if_due,
)
from stockade.testing import FakeClock

from .conftest import make_request

KINDS = ("approve", "deny", "expire", "cancel", "consume")


def ev(kind: str, clock: FakeClock, by: str = "alice") -> Event:
    return Event.model_validate(
        {"kind": kind, "by": by, "channel": "cli", "at": clock.now(), "reason": "because"}
    )


@pytest.mark.guarantee("apr-transitions-table")
def test_every_pair_outside_the_table_raises_and_changes_nothing(clock: FakeClock) -> None:
    base = make_request(clock)
    for state in State:
        req = base.model_copy(update={"state": state})
        for kind in KINDS:
            if kind == "expire":
                clock_at = FakeClock(base.expires_at)
                event = ev(kind, clock_at)
            else:
                event = ev(kind, clock)
            if (state, kind) in TRANSITIONS:
                after, record = apply(req, event)
                assert after.state == TRANSITIONS[(state, kind)]
                assert record.data["by"] == "alice"
            else:
                before = req.model_dump()
                with pytest.raises(IllegalTransition):
                    apply(req, event)
                assert req.model_dump() == before


@pytest.mark.guarantee("apr-transitions-audited")
def test_each_transition_produces_an_audit_record_naming_who_and_how(clock: FakeClock) -> None:
    after, record = apply(make_request(clock), ev("deny", clock, by="bob"))
    assert after.state == State.DENIED
    assert record.type == "approval.denied"
    assert record.data["by"] == "bob"
    assert record.data["channel"] == "cli"
    assert record.data["from"] == "pending"
    assert record.data["digest"] == after.digest
    assert record.session_id == "s1"


@pytest.mark.guarantee("apr-expired-never-approved")
def test_approving_at_or_after_the_deadline_raises(clock: FakeClock) -> None:
    req = make_request(clock, timeout_s=10)
    clock.advance(10)
    with pytest.raises(IllegalTransition, match="expired"):
        apply(req, ev("approve", clock))


def test_a_request_cannot_be_expired_before_its_deadline(clock: FakeClock) -> None:
    req = make_request(clock, timeout_s=10)
    with pytest.raises(IllegalTransition):
        apply(req, ev("expire", clock))


def test_expire_if_due_leaves_terminal_and_early_requests_alone(clock: FakeClock) -> None:
    req = make_request(clock, timeout_s=10)
    assert expire_if_due(req, clock.now()) == (req, None)
    denied, _ = apply(req, ev("deny", clock))
    assert expire_if_due(denied, clock.now() + timedelta(days=1)) == (denied, None)


# -- properties ----------------------------------------------------------------------------------

steps = st.lists(st.tuples(st.sampled_from(KINDS), st.floats(0, 120)), max_size=12)


def run(
    req_clock: FakeClock, seq: list[tuple[str, float]], timeout_s: float = 60
) -> tuple[ApprovalRequest, list[State]]:
    req = make_request(req_clock, timeout_s=timeout_s)
    history = [req.state]
    for kind, dt in seq:
        req_clock.advance(dt)
        with contextlib.suppress(IllegalTransition):
            req, _ = apply(req, ev(kind, req_clock))
        history.append(req.state)
    return req, history


@pytest.mark.guarantee("apr-terminal-absorbing")
@given(steps)
def test_no_sequence_of_events_leaves_a_terminal_state(seq: list[tuple[str, float]]) -> None:
    _, history = run(FakeClock(), seq)
    for a, b in itertools.pairwise(history):
        if a in TERMINAL:
            assert b == a


@pytest.mark.guarantee("apr-expired-never-approved")
@given(steps)
def test_no_sequence_approves_or_consumes_at_or_after_the_deadline(
    seq: list[tuple[str, float]],
) -> None:
    clock = FakeClock()
    req = make_request(clock, timeout_s=60)
    for kind, dt in seq:
        clock.advance(dt)
        try:
            after, _ = apply(req, ev(kind, clock))
        except IllegalTransition:
            continue
        if after.state in (State.APPROVED, State.CONSUMED) and after.state != req.state:
            assert clock.now() < req.expires_at
        req = after


@given(steps)
def test_an_expired_request_is_never_approved_later(seq: list[tuple[str, float]]) -> None:
    _, history = run(FakeClock(), seq)
    if State.EXPIRED in history:
        after = history[history.index(State.EXPIRED) :]
        assert State.APPROVED not in after
        assert State.CONSUMED not in after
