"""Approval requests and their state machine (pure: a transition table, an injected time).

States::

    pending --approve--> approved --consume--> consumed   (dispatched once: single use)
    pending --deny-----> denied                            (terminal)
    pending --expire---> expired                           (terminal; default-deny on timeout)
    pending --cancel---> cancelled                         (terminal; kill switch, shutdown, void)
    approved --expire--> expired     (not dispatched before the deadline)
    approved --cancel--> cancelled   (re-check failed: policy changed, kill switch, mismatch)

A pair missing from :data:`TRANSITIONS` raises :class:`IllegalTransition` and changes nothing.
An ``approve`` at or after the deadline raises too: an expired request is never approved.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field, model_validator

from stockade.models import Category, Frozen, ToolCall
from stockade.textsafe import safe_text

from ._binding import CallBinding
from ._errors import IllegalTransition

__all__ = [
    "OPERATOR_ONLY",
    "TERMINAL",
    "TRANSITIONS",
    "ApprovalRequest",
    "AuditRecord",
    "Channel",
    "Event",
    "EventKind",
    "State",
    "apply",
    "expire_if_due",
]


class State(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    CONSUMED = "consumed"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


EventKind = Literal["approve", "deny", "expire", "cancel", "consume"]

TRANSITIONS: dict[tuple[State, EventKind], State] = {
    (State.PENDING, "approve"): State.APPROVED,
    (State.PENDING, "deny"): State.DENIED,
    (State.PENDING, "expire"): State.EXPIRED,
    (State.PENDING, "cancel"): State.CANCELLED,
    (State.APPROVED, "consume"): State.CONSUMED,
    (State.APPROVED, "expire"): State.EXPIRED,
    (State.APPROVED, "cancel"): State.CANCELLED,
}

TERMINAL = frozenset({State.CONSUMED, State.DENIED, State.EXPIRED, State.CANCELLED})

#: The channels a decision may arrive through (recorded with every transition).
Channel = Literal["cli", "web", "gateway", "system", "elicitation"]

#: Categories an answer from the agent's own client (MCP form-mode elicitation) may never approve:
#: that client is not a proven human, and these actions are what an injected agent would fake.
OPERATOR_ONLY = frozenset(
    {Category.EXFILTRATION, Category.CREDENTIALS, Category.FINANCIAL, Category.PERMISSION_GRANT}
)


class Event(Frozen):
    """One input to the machine: what happened, who did it and through which channel."""

    kind: EventKind
    by: str = Field(min_length=1)
    channel: Channel
    at: datetime
    reason: str = ""


class ApprovalRequest(Frozen):
    """A request for a human decision on one exact call."""

    id: str = Field(min_length=1)
    digest: str = Field(min_length=1)
    binding: CallBinding
    call: ToolCall
    category: Category
    reason: str
    rule: str = ""
    created_at: datetime
    expires_at: datetime
    state: State = State.PENDING
    decided_by: str = ""
    channel: str = ""
    decided_at: datetime | None = None
    note: str = ""
    #: The downstream server's run (its trace gets every transition as ``approval`` evidence).
    run_id: str = ""
    #: How the call came to be flagged: the context's taint source and the flow checks.
    provenance: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> ApprovalRequest:
        if self.digest != self.binding.digest:
            raise ValueError("request digest does not match its binding")
        if self.expires_at <= self.created_at:
            raise ValueError("a request must expire after it is created")
        return self

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def due(self, now: datetime) -> bool:
        return now >= self.expires_at


class AuditRecord(Frozen):
    """The audit event one transition produces (the adapter appends it to the sink)."""

    type: str
    data: dict[str, Any]
    session_id: str | None = None


def apply(request: ApprovalRequest, event: Event) -> tuple[ApprovalRequest, AuditRecord]:
    """The request after ``event``, and its audit record; raises and changes nothing if illegal."""
    target = TRANSITIONS.get((request.state, event.kind))
    if target is None:
        raise IllegalTransition(
            f"approval {request.id}: cannot {event.kind} a request that is {request.state.value}",
            "list the request's state with: stockade approvals show ID",
        )
    if event.kind in ("approve", "consume") and request.due(event.at):
        raise IllegalTransition(
            f"approval {request.id}: cannot {event.kind} at {event.at.isoformat()}, it expired "
            f"at {request.expires_at.isoformat()}",
            "the call was denied on timeout; the agent may ask again",
        )
    if (
        event.kind == "approve"
        and event.channel == "elicitation"
        and request.category in OPERATOR_ONLY
    ):
        raise IllegalTransition(
            f"approval {request.id}: a {request.category.value} action cannot be approved by "
            "the agent's own client (form elicitation)",
            "approve it at the terminal or on the approval page",
        )
    if event.kind == "expire" and not request.due(event.at):
        raise IllegalTransition(
            f"approval {request.id}: cannot expire before {request.expires_at.isoformat()}",
            "cancel or deny it instead",
        )
    # The operator's decision (who, how, when) stays on the request after it is spent or voided;
    # every transition is in the audit record and the store's history.
    update: dict[str, Any] = {"state": target, "note": event.reason}
    if request.state == State.PENDING:
        update |= {"decided_by": event.by, "channel": event.channel, "decided_at": event.at}
    updated = request.model_copy(update=update)
    record = AuditRecord(
        type=f"approval.{target.value}",
        session_id=request.call.session or None,
        data={
            "id": request.id,
            "digest": request.digest,
            "from": request.state.value,
            "to": target.value,
            "by": event.by,
            "channel": event.channel,
            "reason": safe_text(event.reason, single_line=True, limit=500),
            "server": request.call.server,
            "tool": request.call.tool,
            "category": request.category.value,
            "policy_hash": request.binding.policy_hash,
            "at": event.at.isoformat(),
        },
    )
    return updated, record


def expire_if_due(
    request: ApprovalRequest, now: datetime
) -> tuple[ApprovalRequest, AuditRecord | None]:
    """Expire a pending/approved request whose deadline has passed; otherwise unchanged."""
    if request.terminal or not request.due(now):
        return request, None
    return apply(request, Event(kind="expire", by="stockade", channel="system", at=now))
