"""The gateway's veto wiring: VetoDecider, the kill watch, approval evidence in the run trace."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stockade.approvals import (
    ApprovalStore,
    Event,
    KillSwitch,
    State,
    StoreApprover,
    VetoDecider,
    default_approver,
    new_request,
    watch_kill,
)
from stockade.gateway import ApprovalStep, CallContext, DecisionContext
from stockade.models import Category, Decision, RunRecord, ToolCall
from stockade.policy import Policy, parse_policy
from stockade.store import RunStore
from stockade.testing import FakeClock

from .conftest import POLICY, make_call

POLICY_TEXT = """\
version: 1
default: deny
servers:
  - name: mail
    command: ["/usr/bin/true"]
    network: [mail.example.com]
    tools:
      rules:
        - tool: send
          action: allow
          tier: medium
          category: exfiltration
        - tool: fetch
          action: allow
          tier: low
"""


class Allow:
    """A stand-in policy decider that allows everything and lists only ``fetch``."""

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        return Decision.allow("policy", rule="allow-all")

    def listable(self, client: str, server: str, tool: str) -> bool:
        return tool == "fetch"


CTX = DecisionContext(tainted=True, exposed_name="mail__fetch")


def _parse(text: str) -> Policy:
    result = parse_policy(text)
    assert result.policy is not None, result.errors
    return result.policy


def _policy() -> Policy:
    return _parse(POLICY_TEXT)


def _run(rs: RunStore, run_id: str = "run_mail") -> str:
    rs.create(
        RunRecord(run_id=run_id, workload="mail", kind="server", created_at=datetime.now(UTC))
    )
    return run_id


@pytest.mark.guarantee("apr-gateway-default-store")
def test_every_stockade_policy_makes_the_store_approver_the_default_with_or_without_rules() -> None:
    assert default_approver(_policy()) == "store"
    plain = _parse(POLICY_TEXT.replace("          category: exfiltration\n", ""))
    assert default_approver(plain) == "store"  # argument inspection may still ask for a human
    assert default_approver(None) == "list"  # the stand-alone gateway: format has no store


@pytest.mark.guarantee("apr-veto-decider")
def test_the_veto_decider_denies_every_call_while_the_kill_switch_is_engaged(
    store: ApprovalStore, clock: FakeClock
) -> None:
    veto = VetoDecider(Allow(), _policy(), store, clock)
    call = ToolCall(server="mail", tool="fetch", arguments={"q": "x"})
    assert veto(call, CTX).kind == "allow"
    store.set_kill(engaged=True, by="ops", reason="incident 7", now=clock.now())
    d = veto(call, CTX)
    assert d.kind == "deny"
    assert "kill switch" in d.reason
    assert "incident 7" in d.reason
    store.set_kill(engaged=False, by="ops", reason="resolved", now=clock.now())
    assert veto(call, CTX).kind == "allow"


@pytest.mark.guarantee("apr-veto-decider")
def test_the_veto_decider_turns_an_allowed_call_to_an_unapproved_domain_into_approval(
    store: ApprovalStore, clock: FakeClock
) -> None:
    veto = VetoDecider(Allow(), _policy(), store, clock)
    ok = ToolCall(server="mail", tool="fetch", arguments={"url": "https://mail.example.com/a"})
    risky = ToolCall(server="mail", tool="fetch", arguments={"url": "https://evil.example/x"})
    assert veto(ok, CTX).kind == "allow"
    d = veto(risky, CTX)
    assert d.kind == "require_approval"
    assert d.category == Category.NEW_NETWORK_DOMAIN


@pytest.mark.guarantee("apr-veto-decider")
def test_the_veto_decider_never_loosens_a_deny(store: ApprovalStore, clock: FakeClock) -> None:
    class Deny:
        def __call__(self, call: ToolCall, context: Any) -> Decision:
            return Decision.deny("no", rule="r")

    veto = VetoDecider(Deny(), _policy(), store, clock)
    assert veto(ToolCall(server="mail", tool="fetch"), CTX).kind == "deny"


def test_the_veto_decider_keeps_listing_by_the_policy_rules(
    store: ApprovalStore, clock: FakeClock
) -> None:
    veto = VetoDecider(Allow(), _policy(), store, clock)
    assert veto.listable("agent", "mail", "fetch")
    assert not veto.listable("agent", "mail", "send")


def test_the_kill_watch_calls_back_once_per_engagement(
    store: ApprovalStore, clock: FakeClock
) -> None:
    seen: list[KillSwitch] = []

    async def on_kill(kill: KillSwitch) -> None:
        seen.append(kill)

    async def scenario() -> None:
        await watch_kill(store, on_kill, poll_s=0, rounds=2)
        assert seen == []
        store.set_kill(engaged=True, by="ops", reason="stop", now=clock.now())
        await watch_kill(store, on_kill, poll_s=0, rounds=3)

    asyncio.run(scenario())
    assert [k.reason for k in seen] == ["stop"]


@pytest.mark.guarantee("apr-trace-story")
def test_every_transition_of_a_request_with_a_run_is_approval_evidence_of_that_run(
    tmp_path: Path, clock: FakeClock
) -> None:
    db = tmp_path / "runs.db"
    with RunStore.open(db) as rs:
        run_id = _run(rs)
        store = ApprovalStore(db)
        req = new_request(
            make_call(),
            Decision.require_approval("tainted by web__read", Category.EXFILTRATION, rule="flow"),
            request_id="apr_1",
            image_digest=None,
            policy_hash=POLICY,
            now=clock.now(),
            timeout_s=60,
            run_id=run_id,
            provenance=("taint: tainted by web__read", "flow: to not from trusted context"),
        )
        store.add(req)
        store.transition(
            "apr_1", Event(kind="deny", by="alice", channel="web", at=clock.now(), reason="no")
        )
        story = [i.data for i in rs.trace(run_id).approvals]
        store.close()
    assert [a["state"] for a in story] == ["pending", "denied"]
    last = story[-1]
    assert last["category"] == "exfiltration"
    assert last["flagged"] == "tainted by web__read"
    assert last["provenance"] == [
        "taint: tainted by web__read",
        "flow: to not from trusted context",
    ]
    assert (last["decided_by"], last["channel"], last["note"]) == ("alice", "web", "no")
    assert last["digest"] == req.digest


def test_a_request_without_a_run_or_with_a_vanished_run_records_no_evidence_and_still_works(
    tmp_path: Path, clock: FakeClock
) -> None:
    db = tmp_path / "runs.db"
    with RunStore.open(db) as rs:
        _run(rs)
        store = ApprovalStore(db)
        for rid, run in (("apr_a", ""), ("apr_b", "run_gone")):
            req = new_request(
                make_call(),
                Decision.require_approval("why", Category.EXFILTRATION),
                request_id=rid,
                image_digest=None,
                policy_hash=POLICY,
                now=clock.now(),
                timeout_s=60,
                run_id=run,
            )
            store.add(req)
            ev = Event(kind="deny", by="alice", channel="cli", at=clock.now())
            assert store.transition(rid, ev).state == State.DENIED
        assert rs.trace("run_mail").approvals == ()
        store.close()


def test_the_approval_step_hands_the_calls_provenance_to_a_tracing_approver(
    tmp_path: Path, clock: FakeClock
) -> None:
    db = tmp_path / "runs.db"
    store = ApprovalStore(db)
    approver = StoreApprover(
        store,
        clock,
        policy_hash=lambda: POLICY,
        timeout_for=lambda c: 10.0,
        wait=clock.advance,
        run_id=lambda server: None,
    )
    ctx = CallContext(call=make_call(), exposed_name="mail__send")
    ctx.decision = Decision.require_approval("flow", Category.EXFILTRATION, rule="flow")
    ctx.provenance.extend(["taint: tainted by web__read", "flow: to not from trusted context"])

    async def nxt(c: CallContext) -> dict[str, Any]:
        raise AssertionError("a call nobody approved must not be dispatched")

    result = asyncio.run(ApprovalStep(approver, 30.0)(ctx, nxt))
    assert result["isError"]
    (req,) = store.list(now=clock.now(), states=(State.EXPIRED,))
    assert req.provenance == ("taint: tainted by web__read", "flow: to not from trusted context")
    store.close()


_DENY_FROM_ANOTHER_PROCESS = """
import sys
from datetime import UTC, datetime
from stockade.approvals import ApprovalStore, Event
s = ApprovalStore(sys.argv[1])
s.transition(sys.argv[2], Event(kind="deny", by="bob", channel="cli", at=datetime.now(UTC)))
"""


@pytest.mark.guarantee("apr-trace-story")
def test_a_decision_written_by_another_process_reaches_a_gateway_holding_the_run_store_open(
    tmp_path: Path,
) -> None:
    # The gateway keeps its run store open and the approver polls from worker threads; the
    # operator's CLI writes from another process. The decision must be seen, never lost.
    db = tmp_path / "runs.db"
    now = datetime.now(UTC)
    with RunStore.open(db) as rs:
        run_id = _run(rs)
        store = ApprovalStore(db)
        other = ApprovalStore(db)  # a second store in the same process (the kill watch's)
        req = new_request(
            make_call(),
            Decision.require_approval("why", Category.EXFILTRATION),
            request_id="apr_x",
            image_digest=None,
            policy_hash=POLICY,
            now=now,
            timeout_s=600,
            run_id=run_id,
        )
        store.add(req)
        assert not other.kill_switch().engaged
        rs.add_evidence(run_id, "decision", {"n": 1})
        proc = subprocess.run(
            [sys.executable, "-c", _DENY_FROM_ANOTHER_PROCESS, str(db), "apr_x"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert store.get("apr_x", now=now).state == State.DENIED
        rs.add_evidence(run_id, "decision", {"n": 2})
        states = [a.data["state"] for a in rs.trace(run_id).approvals]
        store.close()
        other.close()
    assert states == ["pending", "denied"]
    with RunStore.open(db) as again:
        assert again.connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize("engaged", [True, False])
def test_the_store_approver_denies_at_once_while_killed(
    store: ApprovalStore, clock: FakeClock, engaged: bool
) -> None:
    if engaged:
        store.set_kill(engaged=True, by="ops", reason="stop", now=clock.now())
    approver = StoreApprover(
        store,
        clock,
        policy_hash=lambda: POLICY,
        timeout_for=lambda c: 10.0,
        wait=clock.advance,
    )
    d = approver.decide_traced(
        make_call(), Decision.require_approval("x", Category.EXFILTRATION), ("taint: t",)
    )
    assert d.kind == "deny"
    assert ("kill switch" in d.reason) == engaged
