"""Escalation of unusual patterns in a session (pure).

A session is raised to "approval required for everything" when, since the last operator clear:

- **burst**: at least ``burst`` of its requests were denied or expired within ``window_s``;
- **repeat**: a request repeats a call (server, tool, canonical arguments) that was already denied
  or expired in that session;
- **new domain**: a request was flagged ``new_network_domain``.

The answer names the first rule that fired; ``None`` means not escalated. Clearing is an explicit
operator action (recorded by the store); only requests after the clear count.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from stockade.models import Category, Decision, Frozen

from ._machine import ApprovalRequest, State

__all__ = ["EscalationRules", "escalate", "escalation"]

_BAD = (State.DENIED, State.EXPIRED)


class EscalationRules(Frozen):
    burst: int = 3
    window_s: float = 600.0


def escalation(
    requests: Iterable[ApprovalRequest],
    *,
    now: datetime,
    since: datetime | None = None,
    rules: EscalationRules | None = None,
) -> str | None:
    """Why the session of ``requests`` is escalated, or ``None``."""
    r = rules or EscalationRules()
    reqs = sorted(
        (q for q in requests if since is None or q.created_at > since), key=lambda q: q.created_at
    )
    window = timedelta(seconds=r.window_s)
    bad_times = [q.decided_at or q.expires_at for q in reqs if q.state in _BAD]
    recent = [t for t in bad_times if now - window <= t <= now]
    if len(recent) >= r.burst:
        return f"burst: {len(recent)} denied or expired requests within {r.window_s:g}s"
    seen_bad: set[tuple[str, str, str]] = set()
    for q in reqs:
        key = (q.call.server, q.call.tool, q.binding.arguments)
        if key in seen_bad:
            return f"repeat: {q.call.tool!r} asked again after it was denied or expired"
        if q.state in _BAD:
            seen_bad.add(key)
        if q.category == Category.NEW_NETWORK_DOMAIN:
            return f"new domain: request {q.id} reached for a never-approved domain"
    return None


def escalate(decision: Decision, why: str | None) -> Decision:
    """In an escalated session an ``allow`` becomes ``require_approval``; others are unchanged."""
    if why is None or decision.kind != "allow":
        return decision
    return Decision.require_approval(
        f"session escalated ({why}); approval required for everything",
        decision.category or Category.EXFILTRATION,
        rule="escalation",
        tier=decision.tier,
    )
