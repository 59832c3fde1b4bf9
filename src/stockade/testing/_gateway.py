"""Small public fakes for testing the gateway's pure parts (never for production wiring)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stockade.models import AuditEvent, Category, Decision, ToolCall

__all__ = ["FakeClock", "MemoryAuditSink", "ScriptedApprover", "StaticDecider"]


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class MemoryAuditSink:
    """Keeps events in a list (no chain, no MAC): tests read ``events``."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def append(
        self,
        type: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:
        ev = AuditEvent(
            seq=len(self.events),
            ts="1970-01-01T00:00:00Z",
            type=type,
            run_id=run_id,
            session_id=session_id,
            data=data,
            prev="",
            mac="",
        )
        self.events.append(ev)
        return ev

    def of_type(self, type: str) -> list[AuditEvent]:
        return [e for e in self.events if e.type == type]


class StaticDecider:
    """Decides by exact ``server__tool`` name from fixed sets; anything else is denied."""

    def __init__(self, allow: set[str] | None = None, approval: set[str] | None = None) -> None:
        self.allow = allow or set()
        self.approval = approval or set()
        self.seen: list[ToolCall] = []

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        self.seen.append(call)
        name = f"{call.server}__{call.tool}"
        if name in self.allow:
            return Decision.allow(rule="static.allow")
        if name in self.approval:
            return Decision.require_approval(
                "static", Category.EXFILTRATION, rule="static.approval"
            )
        return Decision.deny("not in the static allow set", rule="static.default")


class ScriptedApprover:
    """Answers approval requests from a fixed verdict; records what it was asked."""

    def __init__(self, allow: bool) -> None:
        self.allow = allow
        self.asked: list[tuple[ToolCall, Decision]] = []

    def decide(self, call: ToolCall, decision: Decision) -> Decision:
        self.asked.append((call, decision))
        if self.allow:
            return Decision.allow("approved by script", rule="scripted")
        return Decision.deny("refused by script", rule="scripted")
