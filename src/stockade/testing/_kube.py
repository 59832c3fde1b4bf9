"""An in-memory :class:`stockade.kube.ClusterApi` for pure-logic tests of plan/apply/rollback.

It stores objects by reference, assigns a ``resourceVersion`` and ``uid`` on every write (as an
API server does), enforces create-must-not-exist / replace-must-exist and optimistic concurrency,
and records every call. It does not admit, default or schedule anything.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

from stockade.kube import KubeError, Manifest, ObjRef, ref_of

__all__ = ["FakeCluster"]


@dataclass
class FakeCluster:
    objects: dict[ObjRef, Manifest] = field(default_factory=dict)
    daemonsets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    calls: list[tuple[str, ObjRef]] = field(default_factory=list)
    #: References whose next write fails (to test partial applies).
    fail_on: set[ObjRef] = field(default_factory=set)
    #: Per Pod: the ``status`` documents :meth:`step` applies, one per call (phases over time).
    script: dict[ObjRef, list[Manifest]] = field(default_factory=dict)
    #: Per Pod: the server container's log as ``pod_log`` returns it.
    logs: dict[ObjRef, str] = field(default_factory=dict)
    _version: int = 0

    def put(self, obj: Manifest) -> None:
        """Seed an object directly (as if it existed before the test)."""
        self._store(copy.deepcopy(obj))

    def _store(self, obj: Manifest) -> None:
        self._version += 1
        meta = obj.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._version)
        meta.setdefault("uid", f"uid-{self._version}")
        meta.setdefault("creationTimestamp", "2026-01-01T00:00:00Z")
        self.objects[ref_of(obj)] = obj

    def _check(self, op: str, ref: ObjRef) -> None:
        self.calls.append((op, ref))
        if ref in self.fail_on:
            raise KubeError(f"{op} {ref} failed (injected)", "retry")

    def get(self, ref: ObjRef) -> Manifest | None:
        obj = self.objects.get(ref)
        return copy.deepcopy(obj) if obj is not None else None

    def create(self, obj: Manifest) -> None:
        ref = ref_of(obj)
        self._check("create", ref)
        if ref in self.objects:
            raise KubeError(f"{ref} already exists (409)", "use replace")
        new = copy.deepcopy(obj)
        if ref.kind == "Pod":  # as an API server does: a new Pod is Pending until scheduled
            new.setdefault("status", {"phase": "Pending"})
        self._store(new)

    def replace(self, obj: Manifest) -> None:
        ref = ref_of(obj)
        self._check("replace", ref)
        cur = self.objects.get(ref)
        if cur is None:
            raise KubeError(f"{ref} not found (404)", "create it")
        rv = obj.get("metadata", {}).get("resourceVersion")
        if rv is not None and rv != cur["metadata"]["resourceVersion"]:
            raise KubeError(f"{ref} changed since it was read (409)", "plan again")
        new = copy.deepcopy(obj)
        new["metadata"]["uid"] = cur["metadata"]["uid"]
        self._store(new)

    def delete(self, ref: ObjRef) -> None:
        self._check("delete", ref)
        if self.objects.pop(ref, None) is None:
            raise KubeError(f"{ref} not found (404)", "nothing to delete")

    def step(self) -> None:
        """Move every scripted Pod that still exists to its next status (like time passing)."""
        for ref, statuses in self.script.items():
            if statuses and ref in self.objects:
                self.objects[ref]["status"] = copy.deepcopy(statuses.pop(0))

    def pod_log(self, ref: ObjRef, container: str, limit_bytes: int) -> str:
        self._check("log", ref)
        if ref not in self.objects:
            raise KubeError(f"{ref} not found (404)", "read the log before deleting the Pod")
        return self.logs.get(ref, "")[-limit_bytes:]

    def daemonset_names(self, namespace: str) -> tuple[str, ...]:
        return self.daemonsets.get(namespace, ())

    def run_ids(self, namespace: str) -> frozenset[str]:
        return frozenset(
            o["metadata"]["labels"]["stockade.dev/run-id"]
            for r, o in self.objects.items()
            if r.kind == "Pod"
            and r.namespace == namespace
            and "stockade.dev/run-id" in o["metadata"].get("labels", {})
        )
