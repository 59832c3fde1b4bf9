"""Alert hooks fired from the audit stream: a downstream server failing or crashing; kill switch."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockade.approvals import ApprovalStore
from stockade.gates import Alert, AlertError, AlertingAuditSink, CommandHook, alert_for
from stockade.testing import FakeClock, MemoryAuditSink


class Recorder:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def fire(self, alert: Alert) -> None:
        self.alerts.append(alert)


class Broken:
    def fire(self, alert: Alert) -> None:
        raise AlertError("receiver down", "check it")


@pytest.mark.guarantee("cp-alert-kill-switch")
def test_engaging_the_kill_switch_fires_the_alert_hook_through_a_real_command(
    tmp_path: Path,
) -> None:
    out = tmp_path / "alert.json"
    hook = CommandHook(
        [sys.executable, "-c", f"import sys; open({str(out)!r}, 'w').write(sys.stdin.read())"]
    )
    inner = MemoryAuditSink()
    store = ApprovalStore(tmp_path / "a.db", audit=AlertingAuditSink(inner, [hook], FakeClock()))
    store.set_kill(engaged=True, by="carol", reason="incident 42", now=datetime.now(UTC))
    alert = json.loads(out.read_text())
    assert alert["kind"] == "kill_switch"
    assert "carol" in alert["detail"]
    assert "incident 42" in alert["detail"]
    assert [e.type for e in inner.events] == ["approval.kill_switch"]


def test_lifting_the_kill_switch_fires_nothing(tmp_path: Path) -> None:
    rec = Recorder()
    store = ApprovalStore(
        tmp_path / "a.db", audit=AlertingAuditSink(MemoryAuditSink(), [rec], FakeClock())
    )
    store.set_kill(engaged=False, by="carol", reason="over", now=datetime.now(UTC))
    assert rec.alerts == []


@pytest.mark.guarantee("cp-alert-server-down")
@pytest.mark.parametrize(
    ("event", "kind"),
    [("gateway.server_failed", "server_unreachable"), ("gateway.server_restart", "server_crashed")],
)
def test_a_failing_or_crashing_downstream_server_fires_an_alert(event: str, kind: str) -> None:
    rec = Recorder()
    inner = MemoryAuditSink()
    sink = AlertingAuditSink(inner, [rec], FakeClock())
    sink.append(event, {"server": "mail", "error": "connection closed\x1b]0;owned\x07"})
    (alert,) = rec.alerts
    assert alert.kind == kind
    assert alert.subject == "mail"
    assert "\x1b" not in alert.detail
    assert [e.type for e in inner.events] == [event]


def test_a_failing_hook_is_recorded_and_the_event_is_kept() -> None:
    inner = MemoryAuditSink()
    rec = Recorder()
    sink = AlertingAuditSink(inner, [Broken(), rec], FakeClock())
    sink.append("gateway.server_failed", {"server": "mail", "error": "gone"})
    assert [e.type for e in inner.events] == ["gateway.server_failed", "alert.failed"]
    assert inner.events[1].data["error"] == "receiver down"
    assert len(rec.alerts) == 1  # one broken hook does not silence the others


def test_ordinary_events_fire_nothing() -> None:
    for event, data in [("gateway.call", {"server": "x"}), ("approval.kill_switch", {})]:
        assert alert_for(event, data, FakeClock()) is None
