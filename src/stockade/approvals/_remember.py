"""Remembered decisions (pure): an operator's allow or deny for later calls like a decided one.

A remembered decision is made *from* a decided request and can never be broader than it:

- the same server, tool and **category** (a different category is never covered);
- a pattern that is either ``arguments`` (the exact canonical arguments of that request) or
  ``domain`` (one host the request's arguments pointed at; a later call is covered only when it
  names at least one URL and every URL host is exactly that domain);
- a scope: ``session`` or ``client`` of that request, or ``server`` (any client);
- a mandatory expiry (at most 30 days); revocable at any time.

A remembered deny wins over a remembered allow.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from stockade.errors import ApprovalError
from stockade.models import Category, Frozen, ToolCall

from ._binding import canonical_arguments
from ._machine import ApprovalRequest, State

__all__ = ["MAX_REMEMBER_S", "Remembered", "covering", "remember_from", "url_hosts"]

MAX_REMEMBER_S = 30 * 86400
_URL = re.compile(r"(?i)\b[a-z][a-z0-9+.-]*://[^\s\"'<>]+")

Verdict = Literal["allow", "deny"]
PatternKind = Literal["arguments", "domain"]
Scope = Literal["session", "client", "server"]


class Remembered(Frozen):
    id: str = Field(min_length=1)
    verdict: Verdict
    server: str
    tool: str
    category: Category
    pattern_kind: PatternKind
    pattern: str = Field(min_length=1)
    scope: Scope
    scope_value: str = ""
    source_request: str
    created_by: str = Field(min_length=1)
    created_at: datetime
    expires_at: datetime
    revoked_by: str = ""
    revoked_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at

    def covers(self, call: ToolCall, category: Category, now: datetime) -> bool:
        if not self.active(now) or category != self.category:
            return False
        if (call.server, call.tool) != (self.server, self.tool):
            return False
        if self.scope == "session" and call.session != self.scope_value:
            return False
        if self.scope == "client" and call.client != self.scope_value:
            return False
        if self.pattern_kind == "arguments":
            return _args_digest(call.arguments) == self.pattern
        hosts = url_hosts(call.arguments)
        return bool(hosts) and hosts == {self.pattern}


def url_hosts(arguments: dict[str, Any]) -> set[str]:
    """Hosts of every URL in any string value (``?`` for a URL without a parsable host)."""
    hosts: set[str] = set()
    stack: list[Any] = [arguments]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
            stack.extend(str(k) for k in v)
        elif isinstance(v, list | tuple):
            stack.extend(v)
        elif isinstance(v, str):
            for url in _URL.findall(v):
                try:
                    host = urlsplit(url).hostname
                except ValueError:
                    host = None
                hosts.add((host or "?").lower().rstrip("."))
    return hosts


def _args_digest(arguments: dict[str, Any]) -> str:
    return "sha256:" + hashlib.sha256(canonical_arguments(arguments).encode()).hexdigest()


def remember_from(
    request: ApprovalRequest,
    *,
    remembered_id: str,
    pattern_kind: PatternKind,
    domain: str | None = None,
    scope: Scope,
    by: str,
    now: datetime,
    ttl_s: float,
) -> Remembered:
    """A remembered decision no broader than ``request`` and its operator's verdict."""
    if request.state in (State.APPROVED, State.CONSUMED):
        verdict: Verdict = "allow"
    elif request.state == State.DENIED:
        verdict = "deny"
    else:
        raise ApprovalError(
            f"request {request.id} is {request.state.value}: only an operator's approval or "
            "denial can be remembered",
            "decide the request first",
        )
    if request.channel not in ("cli", "web"):
        raise ApprovalError(
            f"request {request.id} was decided through {request.channel or 'no channel'}, not an "
            "operator channel",
            "only decisions made at the terminal or on the approval page can be remembered",
        )
    if not 0 < ttl_s <= MAX_REMEMBER_S:
        raise ApprovalError(
            f"remember for {ttl_s:g}s: expected more than 0 and at most {MAX_REMEMBER_S}s",
            "pass --ttl of at most 30 days",
        )
    if pattern_kind == "arguments":
        if domain is not None:
            raise ApprovalError("an arguments pattern takes no domain", "drop --domain")
        pattern = _args_digest(request.call.arguments)
    else:
        hosts = url_hosts(request.call.arguments)
        d = (domain or "").lower().rstrip(".")
        if not d or d not in hosts or d == "?":
            raise ApprovalError(
                f"domain {domain!r} is not a host the request's arguments named "
                f"({', '.join(sorted(hosts)) or 'none'})",
                "remember one of the hosts of the decided call, or the exact arguments",
            )
        pattern = d
    scope_value = {"session": request.call.session, "client": request.call.client}.get(scope, "")
    if scope == "session" and not scope_value:
        raise ApprovalError("the request has no session to scope to", "use --scope client")
    return Remembered(
        id=remembered_id,
        verdict=verdict,
        server=request.call.server,
        tool=request.call.tool,
        category=request.category,
        pattern_kind=pattern_kind,
        pattern=pattern,
        scope=scope,
        scope_value=scope_value,
        source_request=request.id,
        created_by=by,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl_s),
    )


def covering(
    remembered: list[Remembered], call: ToolCall, category: Category, now: datetime
) -> Remembered | None:
    """The remembered decision that applies to ``call``: any deny first, else an allow."""
    hits = [r for r in remembered if r.covers(call, category, now)]
    denies = [r for r in hits if r.verdict == "deny"]
    if denies:
        return denies[0]
    return hits[0] if hits else None
