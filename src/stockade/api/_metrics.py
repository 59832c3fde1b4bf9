"""Prometheus text exposition: counters kept in process plus counts read from the run store.

Run outcomes, decisions, admission refusals, gateway call timing and blocked egress are read from
the store at scrape time, so they cover every process that records into it (gateway, runner), not
only this API process.
"""

from __future__ import annotations

import json
import threading
from collections import Counter

from stockade.approvals import ApprovalStore
from stockade.approvals import metrics as approval_metrics
from stockade.models import Clock
from stockade.store import RunStore

from ._histogram import TimingSamples, render_egress_blocked

__all__ = ["Metrics", "render_approval_metrics", "render_store_metrics"]

Labels = tuple[tuple[str, str], ...]

#: Gateway deny stages that are attempts to cross a trust boundary (not ordinary policy denials).
_BOUNDARY_STAGES = frozenset({"information-flow", "pin", "pinning", "authenticate"})


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _family(name: str, kind: str, help_: str, samples: dict[Labels, float]) -> list[str]:
    lines = [f"# HELP {name} {help_}", f"# TYPE {name} {kind}"]
    for labels, value in sorted(samples.items()):
        inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
        lines.append(f"{name}{{{inner}}} {value:g}" if inner else f"{name} {value:g}")
    return lines


class Metrics:
    """In-process counters of the API itself (requests, refusals, rate limiting)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: Counter[Labels] = Counter()
        self._auth_refused: Counter[Labels] = Counter()
        self._rate_limited: Counter[Labels] = Counter()
        self._cert_expiry: dict[Labels, float] = {}

    def request(self, route: str, status: int) -> None:
        with self._lock:
            self._requests[(("route", route), ("status", str(status)))] += 1

    def auth_refused(self, reason: str) -> None:
        with self._lock:
            self._auth_refused[(("reason", reason),)] += 1

    def rate_limited(self, kind: str) -> None:
        with self._lock:
            self._rate_limited[(("kind", kind),)] += 1

    def certificate_expiry(self, name: str, unix_seconds: float) -> None:
        with self._lock:
            self._cert_expiry[(("name", name),)] = unix_seconds

    def render(self) -> list[str]:
        with self._lock:
            return [
                *_family(
                    "stockade_api_requests_total",
                    "counter",
                    "API requests by route and status",
                    dict(self._requests),
                ),
                *_family(
                    "stockade_trust_boundary_violations_total",
                    "counter",
                    "Refused authentications and authorisations at the API",
                    dict(self._auth_refused),
                ),
                *_family(
                    "stockade_rate_limited_total",
                    "counter",
                    "Requests answered 429, per limiter",
                    dict(self._rate_limited),
                ),
                *_family(
                    "stockade_certificate_expiry_timestamp_seconds",
                    "gauge",
                    "Expiry (Unix time) of the certificates this process serves with",
                    dict(self._cert_expiry),
                ),
            ]


def render_store_metrics(store: RunStore) -> list[str]:
    conn = store.connection
    runs: dict[Labels, float] = {}
    for status, reason, n in conn.execute(
        "SELECT status, COALESCE(end_reason, ''), COUNT(*) FROM runs GROUP BY 1, 2"
    ):
        runs[(("status", str(status)), ("end_reason", str(reason)))] = float(n)
    decisions: Counter[Labels] = Counter()
    denials: Counter[Labels] = Counter()
    violations: Counter[Labels] = Counter()
    timing = TimingSamples()
    for data, server in conn.execute(
        "SELECT e.data, COALESCE(r.server, '') FROM evidence e JOIN runs r USING (run_id) "
        "WHERE e.kind = 'decision'"
    ):
        kind = "unknown"
        try:
            obj = json.loads(data)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            timing.add(str(server), obj)
            outcome = obj.get("outcome")
            if isinstance(outcome, str) and outcome.startswith("denied:"):
                stage = outcome.removeprefix("denied:")[:64]
                denials[(("stage", stage),)] += 1
                if stage in _BOUNDARY_STAGES:
                    violations[(("stage", stage),)] += 1
            d = obj.get("decision")
            if isinstance(d, dict) and isinstance(d.get("kind"), str):
                kind = d["kind"]
            elif isinstance(obj.get("kind"), str):
                kind = obj["kind"]
        decisions[(("result", kind),)] += 1
    (refused,) = conn.execute(
        "SELECT COUNT(*) FROM evidence WHERE kind = 'sandbox.refused'"
    ).fetchone()
    return [
        *_family("stockade_runs", "gauge", "Runs by status and end reason", runs),
        *_family(
            "stockade_decisions_total", "counter", "Policy decisions by result", dict(decisions)
        ),
        *_family(
            "stockade_gateway_denials_total",
            "counter",
            "Gateway tool calls denied, by the interceptor stage that denied them",
            dict(denials),
        ),
        *_family(
            "stockade_gateway_trust_boundary_violations_total",
            "counter",
            "Gateway calls refused for crossing a trust boundary (tainted data to a sink, pins)",
            dict(violations),
        ),
        *_family(
            "stockade_admission_violations_total",
            "counter",
            "Runs refused at admission or launch",
            {(): float(refused)},
        ),
        *timing.render(),
        *render_egress_blocked(store),
    ]


def render_approval_metrics(store: ApprovalStore, clock: Clock) -> list[str]:
    """Approval requests by category and state (approved, denied, expired, ...)."""
    samples: dict[Labels, float] = {}
    per_category = approval_metrics(store.list(now=clock.now(), limit=100_000))
    for cat, m in per_category.items():
        for state in ("pending", "approved", "consumed", "denied", "expired", "cancelled"):
            samples[(("category", cat.value), ("state", state))] = float(getattr(m, state))
    engaged = 1.0 if store.kill_switch().engaged else 0.0
    return [
        *_family("stockade_approvals", "gauge", "Approval requests by category and state", samples),
        *_family(
            "stockade_kill_switch_engaged", "gauge", "1 while the kill switch is on", {(): engaged}
        ),
    ]
