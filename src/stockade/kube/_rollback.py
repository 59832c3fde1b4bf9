"""Rollback targets: the previous state of every object an apply changes, and the steps that
restore it (pure). Secrets are never recorded with values: an apply only ever creates them."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from stockade.models import Clock, Frozen

from ._cluster import ObjRef
from ._errors import KubeError
from ._input import Manifest, names_for_run
from ._names import LABEL_ROLE
from ._plan import Action, Plan
from ._proxy_objects import INFRA_ROLES, MERGED

__all__ = [
    "RecordedChange",
    "RollbackRecord",
    "RollbackStep",
    "clean",
    "is_run_object",
    "record_for",
    "steps",
]

_SERVER_FIELDS = (
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def clean(live: Manifest) -> Manifest:
    """A live object without server-owned fields, fit to be created or replaced again."""
    out = copy.deepcopy(live)
    out.pop("status", None)
    meta = out.get("metadata", {})
    for k in _SERVER_FIELDS:
        meta.pop(k, None)
    return out


class RecordedChange(Frozen):
    api_version: str
    kind: str
    namespace: str
    name: str
    #: The object as it was before the apply; None when the apply created it (or merged into it).
    previous: dict[str, Any] | None = None
    #: Keys this run added to a shared merged object (its rollback removes exactly these).
    merged_keys: tuple[str, ...] = ()
    #: Whether this apply created the merged object.
    merged_created: bool = False
    #: Shared egress-proxy infrastructure: kept while other runs still use the proxy.
    keep: bool = False

    @property
    def ref(self) -> ObjRef:
        return ObjRef(self.api_version, self.kind, self.namespace, self.name)


class RollbackRecord(Frozen):
    id: str = Field(pattern=r"^[0-9]{8}T[0-9]{6}Z-[a-z0-9-]{1,40}$")
    created_at: str
    server: str
    run_id: str
    changes: tuple[RecordedChange, ...]


def record_for(plan: Plan, *, clock: Clock, server: str, run_id: str) -> RollbackRecord:
    now = clock.now()
    changes: list[RecordedChange] = []
    for c in plan.writes:
        r, merged = c.ref, (c.ref.kind, c.ref.name) in MERGED
        if c.action == Action.UPDATE and r.kind == "Secret" and not merged:
            raise KubeError(f"{c.ref} would be overwritten", "use a new run id")
        prev = clean(c.live) if c.action == Action.UPDATE and c.live is not None else None
        role = c.desired.get("metadata", {}).get("labels", {}).get(LABEL_ROLE)
        changes.append(
            RecordedChange(
                api_version=r.api_version,
                kind=r.kind,
                namespace=r.namespace,
                name=r.name,
                previous=None if merged else prev,  # never a copy of other runs' entries
                # only this run's own key: the desired object also holds the other runs' entries
                merged_keys=(run_id,) if merged else (),
                merged_created=merged and c.action == Action.CREATE,
                keep=role in INFRA_ROLES and not merged,
            )
        )
    return RollbackRecord(
        id=f"{now:%Y%m%dT%H%M%S}Z-{run_id}",
        created_at=now.isoformat(),
        server=server,
        run_id=run_id,
        changes=tuple(changes),
    )


@dataclass(frozen=True)
class RollbackStep:
    action: Literal["delete", "restore", "keep", "unmerge"]
    ref: ObjRef
    previous: Manifest | None
    keys: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"{self.action:>8}  {self.ref}"


def is_run_object(ref: ObjRef, run_id: str) -> bool:
    """Whether ``ref`` belongs to this run alone (its Pod, Secrets, egress NetworkPolicy)."""
    return ref.kind in ("Pod", "Secret", "NetworkPolicy") and ref.name in set(
        names_for_run(run_id).values()
    )


def steps(
    record: RollbackRecord,
    other_runs: frozenset[str] = frozenset(),
    proxy_users: frozenset[str] = frozenset(),
) -> tuple[RollbackStep, ...]:
    """Undo in reverse order: delete what the apply created, restore what it changed.

    Shared objects (namespace, default-deny, quota, limits) the apply created are kept while
    ``other_runs`` (other stockade runs' Pods in the namespace) still depend on them; the egress
    proxy's objects while ``proxy_users`` (other runs with an entry in its allowlists) remain.
    A merged object loses exactly this run's keys (deleted once no other run has an entry).
    """
    out = []
    for c in reversed(record.changes):
        shared = not is_run_object(c.ref, record.run_id)
        if c.merged_keys and (proxy_users or not c.merged_created):
            out.append(RollbackStep("unmerge", c.ref, None, c.merged_keys))
        elif c.merged_keys:
            out.append(RollbackStep("delete", c.ref, None))
        elif (c.keep and proxy_users) or (
            not c.keep and c.previous is None and shared and other_runs
        ):
            out.append(RollbackStep("keep", c.ref, None))
        elif c.previous is None:
            out.append(RollbackStep("delete", c.ref, None))
        else:
            out.append(RollbackStep("restore", c.ref, dict(c.previous)))
    return tuple(out)
