"""Small interfaces through which parts reach I/O they do not own."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from ._calls import Decision, ToolCall
from ._runs import AuditEvent


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """The real clock (UTC). Pure cores take a :class:`Clock`; only edges build this one."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@runtime_checkable
class AuditSink(Protocol):
    def append(
        self,
        type: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent: ...


@runtime_checkable
class Approver(Protocol):
    """Asked for ``require_approval`` decisions; must answer deny on timeout or error."""

    def decide(self, call: ToolCall, decision: Decision) -> Decision: ...
