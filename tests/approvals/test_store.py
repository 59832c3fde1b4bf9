"""Approval requests persist in the run store and survive a restart, never approved by one."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stockade.approvals import ApprovalNotFound, ApprovalStore, Event, IllegalTransition, State
from stockade.store import SCHEMA_VERSION, RunStore
from stockade.testing import FakeClock, MemoryAuditSink

from .conftest import make_request


def ev(kind: str, clock: FakeClock, by: str = "alice") -> Event:
    return Event.model_validate({"kind": kind, "by": by, "channel": "cli", "at": clock.now()})


def test_the_migration_adds_approval_tables_to_the_run_store(tmp_path: Path) -> None:
    with RunStore.open(tmp_path / "runs.db") as rs:
        assert rs.schema_version == SCHEMA_VERSION >= 2
        names = {r[0] for r in rs.connection.execute("SELECT name FROM sqlite_master")}
    assert {"approvals", "approval_events", "kill_switch"} <= names


@pytest.mark.guarantee("apr-restart-never-approves")
def test_a_pending_request_survives_a_restart_and_expires_after_its_deadline(
    tmp_path: Path, clock: FakeClock
) -> None:
    db = tmp_path / "runs.db"
    with ApprovalStore(db) as s:
        s.add(make_request(clock, timeout_s=30))
    clock.advance(10)
    with ApprovalStore(db) as s:
        assert s.get("apr_1", now=clock.now()).state == State.PENDING
    clock.advance(30)
    sink = MemoryAuditSink()
    with ApprovalStore(db, audit=sink) as s:
        assert [r.id for r in s.expire_due(clock.now())] == ["apr_1"]
        req = s.get("apr_1", now=clock.now())
        assert req.state == State.EXPIRED
        with pytest.raises(IllegalTransition):
            s.transition("apr_1", ev("approve", clock))
        assert s.get("apr_1", now=clock.now()).state == State.EXPIRED
    assert [e.type for e in sink.events] == ["approval.expired"]


@pytest.mark.guarantee("apr-restart-never-approves")
@settings(max_examples=20)
@given(st.lists(st.floats(0, 200), min_size=1, max_size=5))
def test_reloading_with_any_later_clock_never_approves(
    tmp_path_factory: pytest.TempPathFactory, jumps: list[float]
) -> None:
    db = tmp_path_factory.mktemp("restart") / "runs.db"
    clock = FakeClock()
    with ApprovalStore(db) as s:
        s.add(make_request(clock, timeout_s=60))
    for dt in jumps:
        clock.advance(dt)
        with ApprovalStore(db) as s:
            states = {r.state for r in s.list(now=clock.now())}
            assert states <= {State.PENDING, State.EXPIRED}


def test_approve_after_the_deadline_expires_the_request_and_raises(
    store: ApprovalStore, clock: FakeClock, sink: MemoryAuditSink
) -> None:
    store.add(make_request(clock, timeout_s=5))
    clock.advance(6)
    with pytest.raises(IllegalTransition):
        store.transition("apr_1", ev("approve", clock))
    assert store.get("apr_1", now=clock.now()).state == State.EXPIRED
    assert [e.type for e in sink.events] == ["approval.requested", "approval.expired"]


def test_a_second_decision_on_a_decided_request_raises_and_keeps_the_first(
    store: ApprovalStore, clock: FakeClock
) -> None:
    store.add(make_request(clock))
    store.transition("apr_1", ev("deny", clock, by="bob"))
    with pytest.raises(IllegalTransition):
        store.transition("apr_1", ev("approve", clock, by="mallory"))
    req = store.get("apr_1", now=clock.now())
    assert (req.state, req.decided_by) == (State.DENIED, "bob")
    assert [e["to"] for e in store.events("apr_1")] == ["denied"]


def test_two_stores_deciding_at_once_cannot_both_win(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "runs.db"
    with ApprovalStore(db) as a, ApprovalStore(db) as b:
        a.add(make_request(clock))
        a.transition("apr_1", ev("approve", clock))
        with pytest.raises(IllegalTransition):
            b.transition("apr_1", ev("deny", clock))


def test_unknown_ids_raise_not_found(store: ApprovalStore, clock: FakeClock) -> None:
    with pytest.raises(ApprovalNotFound):
        store.get("nope", now=clock.now())


@pytest.mark.guarantee("apr-kill-switch")
def test_the_kill_switch_cancels_open_requests_and_is_recorded_with_why(
    store: ApprovalStore, clock: FakeClock, sink: MemoryAuditSink
) -> None:
    store.add(make_request(clock, rid="a"))
    store.add(make_request(clock, rid="b"))
    store.transition("b", ev("approve", clock))
    cancelled = store.set_kill(engaged=True, by="ops", reason="incident 42", now=clock.now())
    assert sorted(cancelled) == ["a", "b"]
    assert {r.state for r in store.list(now=clock.now())} == {State.CANCELLED}
    k = store.kill_switch()
    assert (k.engaged, k.by, k.reason) == (True, "ops", "incident 42")
    store.set_kill(engaged=False, by="ops", reason="resolved", now=clock.now())
    assert not store.kill_switch().engaged
    assert [h.engaged for h in store.kill_history()] == [False, True]
    assert [e.data["engaged"] for e in sink.of_type("approval.kill_switch")] == [True, False]
