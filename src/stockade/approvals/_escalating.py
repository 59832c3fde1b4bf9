"""A decider wrapper for the gateway: in an escalated session every allow needs approval."""

from __future__ import annotations

from typing import Any

from stockade.models import AuditSink, Clock, Decision, ToolCall

from ._escalate import EscalationRules, escalate
from ._store import ApprovalStore

__all__ = ["EscalatingDecider"]


class EscalatingDecider:
    """Wraps a ``(call, context) -> Decision`` decider (the gateway's ``PolicyDecider``)."""

    def __init__(
        self,
        inner: Any,
        store: ApprovalStore,
        clock: Clock,
        *,
        rules: EscalationRules | None = None,
        audit: AuditSink | None = None,
    ) -> None:
        self._inner = inner
        self._store = store
        self._clock = clock
        self._rules = rules
        self._audit = audit

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        decision: Decision = self._inner(call, context)
        why = self._store.escalated(call.session, now=self._clock.now(), rules=self._rules)
        out = escalate(decision, why)
        if out is not decision and self._audit is not None:
            self._audit.append(
                "approval.escalated",
                {"session": call.session, "why": why, "tool": call.tool, "server": call.server},
                session_id=call.session or None,
            )
        return out
