"""Approval metrics per category (pure): counts by outcome and decision latency."""

from __future__ import annotations

from collections.abc import Iterable

from stockade.models import Category, Frozen

from ._machine import ApprovalRequest, State

__all__ = ["CategoryMetrics", "metrics"]


class CategoryMetrics(Frozen):
    category: Category
    requested: int = 0
    pending: int = 0
    approved: int = 0
    consumed: int = 0
    denied: int = 0
    expired: int = 0
    cancelled: int = 0
    latency_max_s: float | None = None
    latency_mean_s: float | None = None


def metrics(requests: Iterable[ApprovalRequest]) -> dict[Category, CategoryMetrics]:
    """Counts per category and state; latency is created -> decided for operator decisions
    (approve/deny), whatever happened afterwards."""
    counts: dict[Category, dict[str, int]] = {}
    latencies: dict[Category, list[float]] = {}
    for r in requests:
        c = counts.setdefault(r.category, {s.value: 0 for s in State})
        c[r.state.value] += 1
        if r.state in (State.APPROVED, State.CONSUMED, State.DENIED) and r.decided_at:
            latencies.setdefault(r.category, []).append(
                (r.decided_at - r.created_at).total_seconds()
            )
    out: dict[Category, CategoryMetrics] = {}
    for cat in Category:
        if cat not in counts:
            continue
        c = counts[cat]
        lat = latencies.get(cat, [])
        out[cat] = CategoryMetrics(
            category=cat,
            requested=sum(c.values()),
            latency_max_s=max(lat) if lat else None,
            latency_mean_s=sum(lat) / len(lat) if lat else None,
            **{s.value: c[s.value] for s in State},
        )
    return out
