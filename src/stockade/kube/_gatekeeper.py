"""Export stockade's rules as OPA Gatekeeper ConstraintTemplates and Constraints."""

from __future__ import annotations

from dataclasses import dataclass

from ._names import LABEL_MANAGED
from ._rego import REGO_PACKAGE, rego_module
from ._rego_cluster import NAMESPACE_PACKAGE, NETPOL_PACKAGE, namespace_module, netpol_module
from ._render import Manifest

__all__ = ["DEFAULT_SECRET_PATTERNS", "ExportParams", "gatekeeper"]

#: The Secrets a stockade Pod reads: its run's granted secrets and its egress token.
DEFAULT_SECRET_PATTERNS = ("stockade-*-secrets", "stockade-*-egress")
_TARGET = "admission.k8s.gatekeeper.sh"
_STOCKADE_NS = {"matchLabels": {LABEL_MANAGED: "stockade"}}
#: Rego package -> Constraint kind (Gatekeeper requires the package to be the lowercase kind).
_KINDS = {
    k.lower(): k for k in ("K8sStockadePod", "K8sStockadeNamespace", "K8sStockadeNetworkPolicy")
}


@dataclass(frozen=True)
class ExportParams:
    """What the cluster policies are parameterised by (from the policy file)."""

    registries: tuple[str, ...]
    secret_patterns: tuple[str, ...] = DEFAULT_SECRET_PATTERNS
    proxy_namespaces: tuple[str, ...] = ("stockade-egress",)


def _array() -> Manifest:
    return {"type": "array", "items": {"type": "string"}}


def _template(kind: str, rego: str, params: dict[str, Manifest]) -> Manifest:
    crd: Manifest = {"names": {"kind": kind}}
    if params:
        crd["validation"] = {"openAPIV3Schema": {"type": "object", "properties": params}}
    return {
        "apiVersion": "templates.gatekeeper.sh/v1",
        "kind": "ConstraintTemplate",
        "metadata": {"name": kind.lower(), "labels": {LABEL_MANAGED: "stockade"}},
        "spec": {"crd": {"spec": crd}, "targets": [{"target": _TARGET, "rego": rego}]},
    }


def _constraint(kind: str, name: str, match: Manifest, params: Manifest | None) -> Manifest:
    spec: Manifest = {"enforcementAction": "deny", "match": match}
    if params is not None:
        spec["parameters"] = params
    return {
        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
        "kind": kind,
        "metadata": {"name": name, "labels": {LABEL_MANAGED: "stockade"}},
        "spec": spec,
    }


def gatekeeper(p: ExportParams) -> tuple[Manifest, ...]:
    """Templates first (Gatekeeper creates each Constraint CRD from its template), then
    Constraints matching stockade's namespaces (Pods, NetworkPolicies) and the Namespaces."""
    pod_kind = _KINDS[REGO_PACKAGE]  # Gatekeeper requires package == lowercase kind
    ns_kind = _KINDS[NAMESPACE_PACKAGE]
    np_kind = _KINDS[NETPOL_PACKAGE]
    return (
        _template(pod_kind, rego_module(), {"registries": _array(), "secretPatterns": _array()}),
        _template(ns_kind, namespace_module(), {}),
        _template(np_kind, netpol_module(), {"proxyNamespaces": _array()}),
        _constraint(
            pod_kind,
            "stockade-pods",
            {
                "kinds": [{"apiGroups": [""], "kinds": ["Pod"]}],
                "namespaceSelector": _STOCKADE_NS,
            },
            {"registries": list(p.registries), "secretPatterns": list(p.secret_patterns)},
        ),
        _constraint(
            ns_kind,
            "stockade-namespaces",
            {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}], "labelSelector": _STOCKADE_NS},
            None,
        ),
        _constraint(
            np_kind,
            "stockade-network-policies",
            {
                "kinds": [{"apiGroups": ["networking.k8s.io"], "kinds": ["NetworkPolicy"]}],
                "namespaceSelector": _STOCKADE_NS,
            },
            {"proxyNamespaces": list(p.proxy_namespaces)},
        ),
    )
