"""The run trace (``get_run_trace``): a run record plus its evidence, grouped for reading."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stockade.models import Frozen, RunRecord

__all__ = ["EvidenceItem", "RunTrace"]


class EvidenceItem(Frozen):
    kind: str
    ts: str
    data: dict[str, Any] = Field(default_factory=dict)


# Evidence kinds the trace groups by name; anything else lands in ``events``.
_GROUPS = {
    "verification": "verification",
    "decision": "decisions",
    "tool_call": "tool_calls",
    "approval": "approvals",
}


class RunTrace(Frozen):
    """Everything needed to explain a run after the fact (DESIGN.md section 4)."""

    run: RunRecord
    gvisor_waived: bool
    verification: tuple[EvidenceItem, ...] = ()
    decisions: tuple[EvidenceItem, ...] = ()
    tool_calls: tuple[EvidenceItem, ...] = ()
    approvals: tuple[EvidenceItem, ...] = ()
    events: tuple[EvidenceItem, ...] = ()

    @classmethod
    def build(cls, run: RunRecord, items: list[EvidenceItem]) -> RunTrace:
        groups: dict[str, list[EvidenceItem]] = {g: [] for g in (*_GROUPS.values(), "events")}
        for item in items:
            groups[_GROUPS.get(item.kind, "events")].append(item)
        return cls(
            run=run,
            gvisor_waived=run.backend not in ("", "gvisor", "kubernetes"),
            **{k: tuple(v) for k, v in groups.items()},
        )
