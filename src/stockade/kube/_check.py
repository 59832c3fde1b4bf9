"""Self-check of a rendered set: admission where it applies, stockade's own rules elsewhere.

``stockade admit`` judges workloads and inert kinds and refuses cluster-policy kinds (Namespace,
NetworkPolicy, ResourceQuota, LimitRange, RuntimeClass) as input it does not judge; those are
checked here against what the renderer promises. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from stockade.admission import Level, StockadeRules, Verdict, evaluate

from ._errors import KubeError
from ._names import LABEL_ROLE
from ._proxy_objects import proxy_policy_spec
from ._render import EGRESS_PROXY_LABELS, PSA_LABELS, RUNTIME_CLASS, RUNTIME_HANDLER, Manifest

__all__ = ["ADMISSION_KINDS", "check_rendered", "rules_for", "verify_rendered"]

#: Kinds the admission validator judges (a workload, or an inert kind it allows).
ADMISSION_KINDS = frozenset({"Pod", "Secret", "Service", "ConfigMap", "Deployment"})


def rules_for(objs: Iterable[Manifest], registries: tuple[str, ...]) -> StockadeRules:
    """The admission grants for a render: the policy's registries, and the run's own Secrets."""
    names = frozenset(o["metadata"]["name"] for o in objs if o.get("kind") == "Secret")
    return StockadeRules.of(registries, names)


def _where(o: Manifest) -> str:
    return f"{o.get('kind')}/{o.get('metadata', {}).get('name')}"


def _namespace(o: Manifest) -> list[str]:
    labels = o.get("metadata", {}).get("labels", {})
    return [
        f"{_where(o)}: label {k}={labels.get(k)!r}, expected {v!r}"
        for k, v in PSA_LABELS.items()
        if labels.get(k) != v
    ]


def _peer_is_proxy(peer: Any) -> bool:
    return (
        isinstance(peer, dict)
        and set(peer) == {"namespaceSelector", "podSelector"}
        and peer["podSelector"] == {"matchLabels": EGRESS_PROXY_LABELS}
        and set(peer["namespaceSelector"]) == {"matchLabels"}
    )


def _netpol(o: Manifest) -> list[str]:
    spec, out = o.get("spec", {}), []
    if o.get("metadata", {}).get("labels", {}).get(LABEL_ROLE) == "egress-proxy-policy":
        ports = [p for r in spec.get("ingress") or [] for p in r.get("ports") or []]
        port = ports[0].get("port") if ports else None
        if not isinstance(port, int) or spec != proxy_policy_spec(port):
            out.append(f"{_where(o)}: the proxy's policy differs from the one stockade renders")
        return out
    if sorted(spec.get("policyTypes", [])) != ["Egress", "Ingress"]:
        out.append(f"{_where(o)}: policyTypes {spec.get('policyTypes')}, expected both")
    if spec.get("ingress"):
        out.append(f"{_where(o)}: has ingress rules, expected none")
    for i, rule in enumerate(spec.get("egress") or []):
        peers = rule.get("to") or []
        if not peers or not all(_peer_is_proxy(p) for p in peers):
            out.append(f"{_where(o)}: egress[{i}] reaches more than the egress proxy")
        ports = rule.get("ports") or []
        if not ports or any(p.get("port") in (53, "dns") or "endPort" in p for p in ports):
            out.append(f"{_where(o)}: egress[{i}] ports {ports}, expected the proxy port only")
    return out


def _has_default_deny(objs: Sequence[Manifest]) -> bool:
    return any(
        o.get("kind") == "NetworkPolicy"
        and o["spec"].get("podSelector") == {}
        and sorted(o["spec"].get("policyTypes", [])) == ["Egress", "Ingress"]
        and not o["spec"].get("ingress")
        and not o["spec"].get("egress")
        for o in objs
    )


def check_rendered(objs: Sequence[Manifest], rules: StockadeRules) -> tuple[str, ...]:
    """Every problem with a rendered set (empty when it is safe to apply)."""
    out: list[str] = []
    kinds = [o.get("kind") for o in objs]
    for needed in ("Namespace", "ResourceQuota", "LimitRange", "Pod"):
        if needed not in kinds:
            out.append(f"the render has no {needed}")
    if not _has_default_deny(objs):
        out.append("the render has no default-deny NetworkPolicy (ingress and egress)")
    for o in objs:
        kind = o.get("kind")
        if kind in ADMISSION_KINDS:
            res = evaluate(o, Level.STOCKADE, rules, only=None)
            if res.verdict != Verdict.ALLOW:
                out += [f"{_where(o)}: {v.check} at {v.path}: {v.message}" for v in res.violations]
        elif kind == "Namespace":
            out += _namespace(o)
        elif kind == "NetworkPolicy":
            out += _netpol(o)
        elif kind == "RuntimeClass":
            if o["metadata"]["name"] != RUNTIME_CLASS or o.get("handler") != RUNTIME_HANDLER:
                out.append(f"{_where(o)}: expected {RUNTIME_CLASS} with handler {RUNTIME_HANDLER}")
        elif kind not in ("ResourceQuota", "LimitRange"):
            out.append(f"{_where(o)}: kind {kind!r} is not one stockade renders")
    return tuple(out)


def verify_rendered(objs: Sequence[Manifest], registries: tuple[str, ...]) -> None:
    """Refuse a render that fails its own checks (the renderer's bug must not reach a cluster)."""
    problems = check_rendered(objs, rules_for(objs, registries))
    if problems:
        raise KubeError(
            "the rendered manifests fail stockade's checks: " + "; ".join(problems[:5]),
            "fix the policy (e.g. list the image's registry under registries:) and render again",
        )
