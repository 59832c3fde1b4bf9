"""Approval metrics: counts per category and outcome, operator decision latency."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from stockade.approvals import ApprovalStore, Event, metrics
from stockade.cli import cli
from stockade.models import Category
from stockade.testing import FakeClock

from .conftest import make_request


def ev(kind: str, clock: FakeClock) -> Event:
    return Event.model_validate({"kind": kind, "by": "alice", "channel": "cli", "at": clock.now()})


def test_counts_and_latency_per_category(store: ApprovalStore, clock: FakeClock) -> None:
    store.add(make_request(clock, rid="a"))
    store.add(make_request(clock, rid="b"))
    store.add(make_request(clock, rid="c", timeout_s=5, category=Category.FINANCIAL))
    clock.advance(4)
    store.transition("a", ev("approve", clock))
    store.transition("a", ev("consume", clock))
    clock.advance(6)
    store.transition("b", ev("deny", clock))
    m = metrics(store.list(now=clock.now()))
    ex = m[Category.EXFILTRATION]
    assert (ex.requested, ex.consumed, ex.denied) == (2, 1, 1)
    assert (ex.latency_mean_s, ex.latency_max_s) == (7.0, 10.0)
    fin = m[Category.FINANCIAL]
    assert (fin.requested, fin.expired, fin.latency_mean_s) == (1, 1, None)
    [a] = [r for r in store.list(now=clock.now()) if r.id == "a"]
    assert (a.decided_by, a.channel) == ("alice", "cli")  # kept after consumption


def test_stats_command_prints_json(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "runs.db"
    with ApprovalStore(db) as s:
        s.add(make_request(clock))
    out = CliRunner().invoke(cli, ["approvals", "stats", "--store", str(db), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["exfiltration"]["expired"] == 1
