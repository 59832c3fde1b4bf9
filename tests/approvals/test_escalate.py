"""Escalation: bursts of denials, repeated denied calls and new domains raise the session until
an operator clears it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.approvals import (
    ApprovalStore,
    EscalatingDecider,
    Event,
    escalate,
    escalation,
)
from stockade.cli import cli
from stockade.models import Category, Decision, SystemClock, ToolCall
from stockade.testing import FakeClock, MemoryAuditSink

from .conftest import make_call, make_request


def deny(store: ApprovalStore, rid: str, clock: FakeClock) -> None:
    store.transition(
        rid, Event.model_validate({"kind": "deny", "by": "op", "channel": "cli", "at": clock.now()})
    )


def allow_all(call: ToolCall, context: object) -> Decision:
    return Decision.allow(rule="inner")


@pytest.mark.guarantee("apr-escalation")
def test_a_burst_of_denials_escalates_and_every_allow_then_needs_approval(
    store: ApprovalStore, clock: FakeClock, sink: MemoryAuditSink
) -> None:
    decider = EscalatingDecider(allow_all, store, clock, audit=sink)
    assert decider(make_call(), None).kind == "allow"
    for i in range(3):
        store.add(make_request(clock, rid=f"r{i}", call=make_call(arguments={"n": i})))
        deny(store, f"r{i}", clock)
    assert store.escalated("s1", now=clock.now()) is not None
    d = decider(make_call(tool="harmless"), None)
    assert d.kind == "require_approval"
    assert "escalated" in d.reason
    assert sink.of_type("approval.escalated")
    assert decider(make_call(session="s2"), None).kind == "allow"  # other sessions unaffected
    store.clear_escalation("s1", by="op", reason="reviewed", now=clock.now())
    assert decider(make_call(), None).kind == "allow"


@pytest.mark.guarantee("apr-escalation")
def test_repeating_a_denied_call_escalates(store: ApprovalStore, clock: FakeClock) -> None:
    store.add(make_request(clock, rid="a"))
    deny(store, "a", clock)
    assert store.escalated("s1", now=clock.now()) is None
    store.add(make_request(clock, rid="b"))
    assert "repeat" in (store.escalated("s1", now=clock.now()) or "")


@pytest.mark.guarantee("apr-escalation")
def test_a_new_domain_escalates(store: ApprovalStore, clock: FakeClock) -> None:
    store.add(make_request(clock, rid="a", category=Category.NEW_NETWORK_DOMAIN))
    assert "new domain" in (store.escalated("s1", now=clock.now()) or "")


def test_old_denials_outside_the_window_do_not_make_a_burst(clock: FakeClock) -> None:
    reqs = []
    for i in range(3):
        r = make_request(clock, rid=f"r{i}", call=make_call(arguments={"n": i}), timeout_s=10)
        reqs.append(r)
        clock.advance(400)
    assert escalation(reqs, now=clock.now()) is None  # each expired 400 s apart


def test_escalate_only_tightens() -> None:
    d = Decision.deny("no")
    assert escalate(d, "why") is d
    assert escalate(Decision.allow(), None).kind == "allow"
    assert escalate(Decision.allow(), "burst").kind == "require_approval"


def test_escalations_and_clear_from_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    db = tmp_path / "runs.db"
    clock = FakeClock(SystemClock().now())
    with ApprovalStore(db) as s:
        s.add(make_request(clock, rid="a", category=Category.NEW_NETWORK_DOMAIN, timeout_s=600))
    runner = CliRunner()
    out = runner.invoke(cli, ["approvals", "escalations", "--store", str(db)])
    assert "s1" in out.output
    assert "new domain" in out.output
    out = runner.invoke(
        cli, ["approvals", "clear", "s1", "--store", str(db), "--by", "op", "--reason", "ok"]
    )
    assert out.exit_code == 0, out.output
    out = runner.invoke(cli, ["approvals", "escalations", "--store", str(db)])
    assert "no escalated sessions" in out.output
