"""Find the Pod inside a workload: kinds, template paths, containers (init, app, ephemeral)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._access import get_list, get_map, get_str, require_map
from ._model import ManifestError

__all__ = ["INERT_KINDS", "WORKLOAD_KINDS", "Container", "PodView", "pod_view"]

# (apiVersion, kind) -> the keys leading from the object to its pod template (() for a Pod).
WORKLOAD_KINDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): (),
    ("v1", "ReplicationController"): ("spec", "template"),
    ("v1", "PodTemplate"): ("template",),
    ("apps/v1", "Deployment"): ("spec", "template"),
    ("apps/v1", "StatefulSet"): ("spec", "template"),
    ("apps/v1", "DaemonSet"): ("spec", "template"),
    ("apps/v1", "ReplicaSet"): ("spec", "template"),
    ("batch/v1", "Job"): ("spec", "template"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template"),
}

# Kinds that cannot run code and do not change cluster policy: reported as allowed with no check
# applied. Anything else is an input error (fail closed): RBAC objects, CRDs, webhooks, custom
# kinds, unknown API versions, and policy objects that could widen what a workload may do
# (Namespace pod-security labels, NetworkPolicy allow rules, ResourceQuota, LimitRange).
INERT_KINDS: frozenset[tuple[str, str]] = frozenset(
    {
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("policy/v1", "PodDisruptionBudget"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"),
    }
)

# Kinds whose pods run until done: activeDeadlineSeconds applies (on the Job or the pod spec).
# Long-running controllers (Deployment, StatefulSet, DaemonSet, ReplicaSet,
# ReplicationController) cannot carry it: the API rejects it in their templates.
_GROUPS = ("initContainers", "containers", "ephemeralContainers")


@dataclass(frozen=True)
class Container:
    obj: Mapping[str, Any]
    path: str  # e.g. "spec.template.spec.initContainers[0]"
    name: str
    group: str  # initContainers | containers | ephemeralContainers


@dataclass(frozen=True)
class PodView:
    kind: str
    name: str
    annotations: Mapping[str, Any]
    meta_path: str
    spec: Mapping[str, Any]
    spec_path: str
    containers: tuple[Container, ...]
    # Places activeDeadlineSeconds may bound the run (object, path); None when not applicable.
    deadline_specs: tuple[tuple[Mapping[str, Any], str], ...] | None

    @property
    def windows(self) -> bool:
        os_ = self.spec.get("os")
        return isinstance(os_, Mapping) and os_.get("name") == "windows"

    @property
    def user_namespace(self) -> bool:
        """True when ``spec.hostUsers`` is explicitly false (the pod runs in a user namespace)."""
        return self.spec.get("hostUsers") is False


def _walk(obj: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[Mapping[str, Any], str]:
    node, path = obj, ""
    for key in keys:
        child = get_map(node, key, path or "(document)")
        path = f"{path}.{key}" if path else key
        if child is None:
            raise ManifestError(f"{path}: missing, expected the pod template", "add it")
        node = child
    return node, path


def _containers(spec: Mapping[str, Any], spec_path: str) -> tuple[Container, ...]:
    out: list[Container] = []
    for group in _GROUPS:
        items = get_list(spec, group, spec_path)
        if group == "containers" and not items:
            raise ManifestError(
                f"{spec_path}.containers: missing or empty, expected at least one container",
                "a pod must declare its containers",
            )
        for i, item in enumerate(items or ()):
            path = f"{spec_path}.{group}[{i}]"
            c = require_map(item, path)
            out.append(Container(c, path, get_str(c, "name", path) or f"#{i}", group))
    return tuple(out)


def pod_view(obj: Mapping[str, Any]) -> PodView | None:
    """The pod inside ``obj``; ``None`` for an inert kind; :class:`ManifestError` otherwise."""
    api = get_str(obj, "apiVersion", "(document)")
    kind = get_str(obj, "kind", "(document)")
    if api is None or kind is None:
        raise ManifestError(
            "document has no apiVersion/kind, expected a Kubernetes object",
            "set apiVersion and kind",
        )
    key = (api, kind)
    if key in INERT_KINDS:
        return None
    if key not in WORKLOAD_KINDS:
        known = ", ".join(f"{a} {k}" for a, k in sorted(WORKLOAD_KINDS))
        raise ManifestError(
            f"got apiVersion {api!r} kind {kind!r}, expected a workload ({known}) "
            "or an inert kind (ConfigMap, Secret, Service, ServiceAccount, "
            "PodDisruptionBudget, HorizontalPodAutoscaler)",
            "stockade admits only the workload kinds it knows how to check (fail closed)",
        )
    meta = get_map(obj, "metadata", "") or {}
    name = get_str(meta, "name", "metadata") or get_str(meta, "generateName", "metadata") or ""
    if key == ("v1", "Pod"):
        template: Mapping[str, Any] = obj
        prefix = ""
    else:
        template, prefix = _walk(obj, WORKLOAD_KINDS[key])
    meta_path = f"{prefix}.metadata" if prefix else "metadata"
    spec_path = f"{prefix}.spec" if prefix else "spec"
    tmeta = get_map(template, "metadata", prefix or "(document)") or {}
    spec = get_map(template, "spec", prefix or "(document)")
    if spec is None:
        raise ManifestError(f"{spec_path}: missing, expected the pod spec", "add the pod spec")
    annotations = get_map(tmeta, "annotations", meta_path) or {}
    deadline: tuple[tuple[Mapping[str, Any], str], ...] | None
    if kind in {"Pod", "PodTemplate"}:
        deadline = ((spec, spec_path),)
    elif kind == "Job":
        deadline = ((_walk(obj, ("spec",))[0], "spec"), (spec, spec_path))
    elif kind == "CronJob":
        deadline = ((_walk(obj, ("spec", "jobTemplate", "spec"))[0], "spec.jobTemplate.spec"),)
        deadline += ((spec, spec_path),)
    else:
        deadline = None
    return PodView(
        kind=kind,
        name=name,
        annotations=annotations,
        meta_path=meta_path,
        spec=spec,
        spec_path=spec_path,
        containers=_containers(spec, spec_path),
        deadline_specs=deadline,
    )
