"""Blocked egress attempts counted per run, domain and kind: the source of the egress metric.

The egress proxy audits each blocked attempt as ``egress.blocked`` (with a bounded ``kind``).
:class:`EgressCounter` wraps the audit sink the proxy is given and counts those events into the
run store (table ``egress_blocked``, migration 6), opening the store per event because the proxy
calls from its own threads. Domains are workload-chosen: each is bounded in length and charset,
and a run counts at most :data:`MAX_DOMAINS_PER_RUN` distinct ones (the rest as ``(other)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from stockade.errors import StockadeError
from stockade.models import AuditEvent, AuditSink, Clock

if TYPE_CHECKING:
    from ._store import RunStore

__all__ = [
    "MAX_DOMAINS_PER_RUN",
    "OTHER_DOMAIN",
    "EgressCounter",
    "blocked_domain",
    "bound_domain",
    "bound_kind",
]

MAX_DOMAINS_PER_RUN = 64
OTHER_DOMAIN = "(other)"
INVALID_DOMAIN = "(invalid)"
_NAME = re.compile(r"[a-z0-9_.:\[\]-]{1,253}")
_KIND = re.compile(r"[a-z_]{1,32}")


def blocked_domain(target: object) -> str:
    """The host an attempt asked for (``host:port`` or an absolute URL), bounded; else invalid."""
    if not isinstance(target, str) or not target:
        return INVALID_DOMAIN
    host = target
    if "://" in target:
        try:
            host = urlsplit(target).hostname or ""
        except ValueError:
            return INVALID_DOMAIN
    elif not target.startswith("["):
        host = target.rpartition(":")[0] or target
    host = host.lower().rstrip(".")
    return host if _NAME.fullmatch(host) else INVALID_DOMAIN


def bound_domain(domain: str) -> str:
    return domain if domain == OTHER_DOMAIN or _NAME.fullmatch(domain) else INVALID_DOMAIN


def bound_kind(kind: object) -> str:
    return kind if isinstance(kind, str) and _KIND.fullmatch(kind) else "other"


class EgressCounter:
    """An :class:`AuditSink` that forwards every event and counts ``egress.blocked`` per run.

    The event is written first. If counting fails (no such run, store unusable), an
    ``egress.count_failed`` event says so; the attempt itself stays blocked either way.
    """

    def __init__(self, inner: AuditSink, open_store: Callable[[], RunStore], clock: Clock) -> None:
        self._inner = inner
        self._open_store = open_store
        self._clock = clock

    def append(
        self,
        type: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:
        event = self._inner.append(type, data, run_id=run_id, session_id=session_id)
        if type == "egress.blocked" and run_id is not None:
            domain, kind = blocked_domain(data.get("target")), bound_kind(data.get("kind"))
            try:
                with self._open_store() as store:
                    store.count_egress_blocked(run_id, domain, kind, self._clock.now())
            except StockadeError as e:
                self._inner.append(
                    "egress.count_failed", {"error": e.what}, run_id=run_id, session_id=session_id
                )
        return event

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # sinks carry extras (add_secrets, close, ...)


def upsert_blocked(conn: Any, run_id: str, domain: str, kind: str, when: str) -> None:
    """Inside a transaction: add one to the run's (domain, kind) count, capping distinct domains."""
    known = conn.execute(
        "SELECT 1 FROM egress_blocked WHERE run_id = ? AND domain = ? LIMIT 1", (run_id, domain)
    ).fetchone()
    if known is None:
        (n,) = conn.execute(
            "SELECT COUNT(DISTINCT domain) FROM egress_blocked WHERE run_id = ?", (run_id,)
        ).fetchone()
        if n >= MAX_DOMAINS_PER_RUN - 1:
            domain = OTHER_DOMAIN
    conn.execute(
        "INSERT INTO egress_blocked (run_id, domain, kind, count, first_ts, last_ts) "
        "VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (run_id, domain, kind) "
        "DO UPDATE SET count = count + 1, last_ts = excluded.last_ts",
        (run_id, domain, kind, when, when),
    )
