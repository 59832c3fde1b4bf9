"""Apply and roll back through a :class:`ClusterApi`: dry-run unless ``execute`` is True.

Order of an executed apply: preflight on the cluster's facts -> record the rollback target
(before any write) -> namespace-level objects -> preflight again on the live namespace ->
the Pod. A refusal at any step leaves the record naming what was already written.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from stockade.models import AuditSink, Clock

from ._cluster import ClusterApi, ObjRef, ref_of
from ._errors import KubeError
from ._plan import Action, Plan, make_plan
from ._preflight import Facts, preflight, problems
from ._records import RecordStore
from ._render import RUNTIME_CLASS, Manifest
from ._rollback import RollbackRecord, RollbackStep, clean, record_for, steps

__all__ = ["ApplyResult", "RollbackResult", "apply_run", "rollback_run"]

_RC = ObjRef("node.k8s.io/v1", "RuntimeClass", "", RUNTIME_CLASS)
_SYSTEM_NS = "kube-system"


@dataclass(frozen=True)
class ApplyResult:
    plan: Plan
    refusals: tuple[str, ...]
    record: RollbackRecord | None
    applied: bool


@dataclass(frozen=True)
class RollbackResult:
    steps: tuple[RollbackStep, ...]
    applied: bool


def _namespace_ref(desired: tuple[Manifest, ...]) -> ObjRef:
    """The run's namespace (the Pod's; an allowlist run also renders the proxy's)."""
    (pod,) = [o for o in desired if o["kind"] == "Pod"]
    (ns,) = [
        ref_of(o)
        for o in desired
        if o["kind"] == "Namespace" and o["metadata"]["name"] == pod["metadata"]["namespace"]
    ]
    return ns


def _write(api: ClusterApi, desired: Manifest, live: Manifest | None) -> None:
    if live is None:
        api.create(desired)
        return
    body = copy.deepcopy(desired)
    rv = live.get("metadata", {}).get("resourceVersion")
    if rv is not None:
        body["metadata"]["resourceVersion"] = rv  # optimistic concurrency: no lost update
    api.replace(body)


def _without(live: Manifest, keys: tuple[str, ...]) -> Manifest:
    """A merged object with one run's keys removed (other runs' entries untouched)."""
    body = clean(live)
    body["data"] = {k: v for k, v in (live.get("data") or {}).items() if k not in keys}
    return body


def apply_run(
    api: ClusterApi,
    desired: tuple[Manifest, ...],
    *,
    execute: bool,
    store: RecordStore,
    clock: Clock,
    server: str,
    run_id: str,
    unsafe_assume_networkpolicy: bool = False,
    audit: AuditSink | None = None,
) -> ApplyResult:
    refs = [ref_of(o) for o in desired]
    live = {r: api.get(r) for r in dict.fromkeys([*refs, _RC])}
    plan = make_plan(desired, live)
    ns_ref = _namespace_ref(desired)
    ns_change = next(c for c in plan.changes if c.ref == ns_ref)
    # In a dry run the namespace is judged as it will be once the plan's write is done.
    ns_after = ns_change.desired if ns_change.action != Action.UNCHANGED else live[ns_ref]
    daemonsets = api.daemonset_names(_SYSTEM_NS)
    facts = Facts(live[_RC], ns_after, daemonsets, unsafe_assume_networkpolicy)
    if not execute:
        return ApplyResult(plan, problems(facts), None, False)
    found = problems(facts)
    if found and audit is not None:
        audit.append(
            "k8s.apply.refused", {"server": server, "refusals": list(found)}, run_id=run_id
        )
    preflight(facts)
    record = record_for(plan, clock=clock, server=server, run_id=run_id)
    store.save(record)
    if audit is not None:
        audit.append(
            "k8s.apply",
            {
                "server": server,
                "record": record.id,
                "unsafe_assume_networkpolicy": unsafe_assume_networkpolicy,
                "changes": [f"{c.action.value} {c.ref}" for c in plan.changes],
            },
            run_id=run_id,
        )
    writes = plan.writes
    try:
        for c in writes:
            if c.ref.kind != "Pod":
                _write(api, c.desired, c.live)
        preflight(Facts(api.get(_RC), api.get(ns_ref), daemonsets, unsafe_assume_networkpolicy))
        for c in writes:
            if c.ref.kind == "Pod":
                _write(api, c.desired, c.live)
    except KubeError as e:
        raise type(e)(
            f"{e.what} (the apply stopped part-way)",
            f"{e.fix}; undo what was written with: stockade k8s rollback {record.id} --apply",
        ) from None
    return ApplyResult(plan, (), record, True)


def _proxy_users(api: ClusterApi, record: RollbackRecord) -> frozenset[str]:
    """Other runs with an entry in the egress proxy's allowlists (they still need the proxy)."""
    mine = {k for c in record.changes for k in c.merged_keys}
    users: set[str] = set()
    for c in record.changes:
        if c.merged_keys and c.kind == "ConfigMap":
            live = api.get(c.ref)
            users |= set((live or {}).get("data") or {})
    return frozenset(users - mine)


def rollback_run(
    api: ClusterApi, record: RollbackRecord, *, execute: bool, audit: AuditSink | None = None
) -> RollbackResult:
    namespaces = {c.namespace for c in record.changes if c.kind == "Pod"}
    others = frozenset(r for ns in sorted(namespaces) for r in api.run_ids(ns)) - {record.run_id}
    todo = steps(record, others, _proxy_users(api, record))
    if execute:
        if audit is not None:
            audit.append(
                "k8s.rollback",
                {"record": record.id, "steps": [s.describe().strip() for s in todo]},
                run_id=record.run_id,
            )
        for s in todo:
            if s.action == "keep":
                continue
            current = api.get(s.ref)
            if s.action == "unmerge":
                if current is not None:
                    _write(api, _without(current, s.keys), current)
            elif s.action == "delete":
                if current is not None:
                    api.delete(s.ref)
            else:
                if s.previous is None:
                    raise KubeError(f"restore step for {s.ref} has no state", "edit by hand")
                _write(api, s.previous, current)
    return RollbackResult(todo, execute)
