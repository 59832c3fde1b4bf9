"""store_approver: timeouts per category from the policy; the policy file re-read at dispatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.approvals import ApprovalStore, Event, State, store_approver
from stockade.models import Category, Decision
from stockade.policy import load_policy
from stockade.testing import FakeClock

from .conftest import make_call

POLICY = """
version: 1
default: deny
approvals:
  timeout_s: 120
  categories:
    exfiltration: {timeout_s: 20}
"""
ASK = Decision.require_approval("sink", Category.EXFILTRATION, rule="r")


def test_the_category_timeout_comes_from_the_policy(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(POLICY)
    clock = FakeClock()
    a = store_approver(load_policy(f), tmp_path / "runs.db", clock)
    a._wait = clock.advance
    assert a.decide(make_call(), ASK).kind == "deny"
    [req] = ApprovalStore(tmp_path / "runs.db").list(now=clock.now())
    # 20 s from the policy, less the 1 s margin that keeps it inside the gateway's own deadline
    assert (req.expires_at - req.created_at).total_seconds() == 19
    assert req.state == State.EXPIRED


@pytest.mark.guarantee("apr-policy-change-voids")
def test_editing_the_policy_file_after_approval_voids_it(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(POLICY)
    clock = FakeClock()
    db = tmp_path / "runs.db"
    store = ApprovalStore(db)

    def operator_then_edit(seconds: float) -> None:
        for r in store.list(now=clock.now(), states=(State.PENDING,)):
            store.transition(r.id, Event(kind="approve", by="alice", channel="cli", at=clock.now()))
            f.write_text(POLICY.replace("timeout_s: 120", "timeout_s: 121"))
        clock.advance(seconds)

    a = store_approver(load_policy(f), db, clock, wait=operator_then_edit)
    answer = a.decide(make_call(), ASK)
    assert answer.kind == "deny"
    assert "policy changed" in answer.reason


def test_an_unloadable_policy_at_dispatch_denies(tmp_path: Path) -> None:
    f = tmp_path / "policy.yaml"
    f.write_text(POLICY)
    clock = FakeClock()
    a = store_approver(load_policy(f), tmp_path / "runs.db", clock)
    f.write_text("default: allow\n")
    assert a.decide(make_call(), ASK).kind == "deny"
