"""Plan and diff: what an apply would change, computed from desired and live objects (pure)."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ._cluster import ObjRef, ref_of
from ._errors import KubeError
from ._proxy_objects import MERGED
from ._render import Manifest
from ._yaml import dump_all, redact

__all__ = ["Action", "Change", "Plan", "diff_text", "make_plan", "project"]


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    PREREQUISITE = "prerequisite"  # cluster-scoped, installed by an administrator, never applied


@dataclass(frozen=True)
class Change:
    ref: ObjRef
    action: Action
    desired: Manifest
    live: Manifest | None


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...]

    @property
    def writes(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.action in (Action.CREATE, Action.UPDATE))

    def summary(self) -> str:
        return "\n".join(f"{c.action.value:>12}  {c.ref}" for c in self.changes)


def project(live: Any, desired: Any) -> Any:
    """``live`` restricted to the fields ``desired`` sets (server defaults are not a change)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {k: project(live[k], v) for k, v in desired.items() if k in live}
    if isinstance(desired, list) and isinstance(live, list) and len(desired) == len(live):
        return [project(lv, dv) for lv, dv in zip(live, desired, strict=True)]
    return live


def _same(live: Manifest, desired: Manifest) -> bool:
    return bool(project(live, desired) == desired)


def _merge(obj: Manifest, cur: Manifest, ref: ObjRef) -> Manifest:
    """A run's own keys added to a live merged object (the proxy's allowlists or tokens)."""
    live_data: dict[str, Any] = dict(cur.get("data") or {})
    mine: dict[str, Any] = dict(obj.get("data") or {})
    taken = sorted(k for k in mine if k in live_data and live_data[k] != mine[k])
    if taken:
        raise KubeError(
            f"{ref} already has an entry for run {taken[0]!r}: a run id is used once",
            "use a new --run-id, or roll back the earlier run",
        )
    return {**obj, "data": {**live_data, **mine}}


def make_plan(
    desired: tuple[Manifest, ...],
    live: Mapping[ObjRef, Manifest | None],
    prerequisites: frozenset[str] = frozenset({"RuntimeClass"}),
) -> Plan:
    """One change per desired object, in order. Secrets are per run and immutable: one that
    already exists is a run-id collision and is refused, never overwritten."""
    out: list[Change] = []
    for given in desired:
        ref = ref_of(given)
        cur = live.get(ref)
        merge = (ref.kind, ref.name) in MERGED and cur is not None
        obj = _merge(given, cur, ref) if merge and cur is not None else given
        if obj["kind"] in prerequisites:
            action = Action.PREREQUISITE
        elif cur is None:
            action = Action.CREATE
        elif _same(cur, obj):
            action = Action.UNCHANGED
        elif obj["kind"] in ("Secret", "Pod") and (ref.kind, ref.name) not in MERGED:
            raise KubeError(
                f"{ref} already exists and differs (got a live object, expected none): a run "
                "id is used once",
                "use a new --run-id, or roll back / delete the earlier run",
            )
        else:
            action = Action.UPDATE
        out.append(Change(ref, action, obj, cur))
    return Plan(tuple(out))


def diff_text(change: Change) -> str:
    """A unified diff of the fields stockade sets, Secret values redacted."""
    before = "" if change.live is None else dump_all([redact(project(change.live, change.desired))])
    after = dump_all([redact(change.desired)])
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        after.splitlines(keepends=True),
        fromfile=f"live: {change.ref}",
        tofile=f"desired: {change.ref}",
    )
    return "".join(lines)
