"""Creating a request for a call, and the re-check immediately before dispatch (pure)."""

from __future__ import annotations

from datetime import datetime, timedelta

from stockade.errors import ApprovalError
from stockade.models import Decision, ToolCall

from ._binding import CallBinding
from ._machine import ApprovalRequest, AuditRecord, Event, State, apply, expire_if_due

__all__ = ["Verdict", "new_request", "recheck"]

Verdict = tuple[Decision, ApprovalRequest, AuditRecord | None]


def new_request(
    call: ToolCall,
    decision: Decision,
    *,
    request_id: str,
    image_digest: str | None,
    policy_hash: str,
    now: datetime,
    timeout_s: float,
    run_id: str = "",
    provenance: tuple[str, ...] = (),
) -> ApprovalRequest:
    """A pending request for ``call`` that expires ``timeout_s`` seconds after ``now``."""
    if decision.kind != "require_approval" or decision.category is None:
        raise ApprovalError(
            f"only require_approval decisions become approval requests, got {decision.kind}",
            "ask the approver only for calls the policy sent to approval",
        )
    if not timeout_s > 0:
        raise ApprovalError(
            f"approval timeout must be positive, got {timeout_s!r}",
            "set approvals.timeout_s (or the category's) in the policy to a positive number",
        )
    binding = CallBinding.of(call, image_digest=image_digest, policy_hash=policy_hash)
    return ApprovalRequest(
        id=request_id,
        digest=binding.digest,
        binding=binding,
        call=call,
        category=decision.category,
        reason=decision.reason,
        rule=decision.rule,
        created_at=now,
        expires_at=now + timedelta(seconds=timeout_s),
        run_id=run_id,
        provenance=provenance,
    )


def recheck(
    request: ApprovalRequest,
    call: ToolCall,
    *,
    image_digest: str | None,
    policy_hash: str,
    now: datetime,
    killed: bool,
) -> Verdict:
    """Spend an approval on ``call`` now, or void it; allow only on an exact, timely match.

    Single use: a successful re-check moves the request to ``consumed``. A policy hash or call
    that differs from the bound one, or an engaged kill switch, cancels it; a passed deadline
    expires it. Each of those answers deny.
    """
    expired, record = expire_if_due(request, now)
    if record is not None:
        return _deny("the approval expired before dispatch"), expired, record
    if request.state != State.APPROVED:
        return _deny(f"the approval is {request.state.value}, not approved"), request, None

    def cancel(why: str) -> Verdict:
        updated, rec = apply(
            request, Event(kind="cancel", by="stockade", channel="system", at=now, reason=why)
        )
        return _deny(why), updated, rec

    if killed:
        return cancel("the kill switch is engaged")
    if policy_hash != request.binding.policy_hash:
        return cancel("the policy changed after approval (the approval is void)")
    current = CallBinding.of(call, image_digest=image_digest, policy_hash=policy_hash)
    if current.digest != request.digest:
        return cancel(
            "the call differs from the approved one (server, image, tool, arguments or session)"
        )
    used, rec = apply(
        request,
        Event(kind="consume", by="stockade", channel="gateway", at=now, reason="dispatched"),
    )
    who = f"{request.decided_by} via {request.channel}"
    return Decision.allow(f"approved by {who}", rule="approvals"), used, rec


def _deny(why: str) -> Decision:
    return Decision.deny(why, rule="approvals")
