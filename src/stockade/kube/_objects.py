"""The objects around a run's Pod: Namespace, NetworkPolicies, egress proxy Service and token,
ResourceQuota, LimitRange and the RuntimeClass (pure)."""

from __future__ import annotations

from ._errors import KubeError
from ._input import (
    EGRESS_PROXY_LABELS,
    EPHEMERAL_OVERHEAD_MB,
    PSA_LABELS,
    RUNTIME_CLASS,
    RUNTIME_HANDLER,
    Manifest,
    RenderInput,
    namespace_meta,
    object_meta,
    pod_resources,
    proxy_ip,
    run_names,
    secret,
)
from ._names import LABEL_MANAGED, LABEL_ROLE, LABEL_RUN
from ._proxy_objects import proxy_objects

__all__ = ["default_deny", "egress_objects", "namespace", "quota_and_limits", "runtime_class"]


def namespace(inp: RenderInput) -> Manifest:
    meta = object_meta(inp, inp.namespace, "namespace", namespaced=False)
    del meta["labels"][LABEL_RUN]
    meta["labels"].update(PSA_LABELS)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def default_deny(inp: RenderInput) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": namespace_meta(inp, "stockade-default-deny", "default-deny"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def egress_objects(inp: RenderInput) -> list[Manifest]:
    """Per-run allow rule to the proxy only (no DNS), the run's token, and the proxy itself
    (namespace, policies, Service, this run's allowlist and token hash, Deployment)."""
    ip, names = proxy_ip(inp), run_names(inp)
    if inp.egress_token is None:  # proxy_ip refuses this already; never render without it
        raise KubeError("no egress token", "pass one")
    url = f"http://{inp.run_id}:{inp.egress_token}@{ip}:{inp.egress_proxy_port}"
    token = secret(
        inp,
        names["egress"],
        "egress-token",
        {
            "token": inp.egress_token.encode(),
            "proxy-url": url.encode(),
            "domains": "\n".join(inp.spec.network.domains).encode(),
        },
    )
    netpol = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": object_meta(inp, names["netpol"], "egress"),
        "spec": {
            "podSelector": {"matchLabels": {LABEL_RUN: inp.run_id, LABEL_ROLE: "workload"}},
            "policyTypes": ["Ingress", "Egress"],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": inp.egress_namespace}
                            },
                            "podSelector": {"matchLabels": dict(EGRESS_PROXY_LABELS)},
                        }
                    ],
                    "ports": [{"protocol": "TCP", "port": inp.egress_proxy_port}],
                }
            ],
        },
    }
    # Shared by every stockade namespace: no server label (one server's apply must not
    # relabel it for another).
    svc_meta = {
        "name": "stockade-egress",
        "namespace": inp.egress_namespace,
        "labels": {LABEL_MANAGED: "stockade", LABEL_ROLE: "egress-proxy"},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": svc_meta,
        "spec": {
            "type": "ClusterIP",
            "clusterIP": ip,
            "selector": dict(EGRESS_PROXY_LABELS),
            "ports": [
                {
                    "name": "proxy",
                    "protocol": "TCP",
                    "port": inp.egress_proxy_port,
                    "targetPort": inp.egress_proxy_port,
                }
            ],
        },
    }
    infra = proxy_objects(inp, inp.egress_token)
    return [*infra[:3], service, *infra[3:], token, netpol]


def quota_and_limits(inp: RenderInput) -> list[Manifest]:
    res, n = pod_resources(inp.spec), inp.max_pods
    cpu_m = int(res["cpu"][:-1]) * n
    mem = inp.spec.memory_mb * n
    eph = (inp.spec.tmp_size_mb + EPHEMERAL_OVERHEAD_MB) * n
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": namespace_meta(inp, "stockade-quota", "quota"),
        "spec": {
            "hard": {
                "pods": str(n),
                "requests.cpu": f"{cpu_m}m",
                "limits.cpu": f"{cpu_m}m",
                "requests.memory": f"{mem}Mi",
                "limits.memory": f"{mem}Mi",
                "requests.ephemeral-storage": f"{eph}Mi",
                "limits.ephemeral-storage": f"{eph}Mi",
                "persistentvolumeclaims": "0",
                "services": "0",
                "services.loadbalancers": "0",
                "services.nodeports": "0",
                "replicationcontrollers": "0",
            }
        },
    }
    limits = {
        "apiVersion": "v1",
        "kind": "LimitRange",
        "metadata": namespace_meta(inp, "stockade-limits", "limits"),
        "spec": {
            "limits": [
                {
                    "type": "Container",
                    "default": dict(res),
                    "defaultRequest": dict(res),
                    "max": dict(res),
                }
            ]
        },
    }
    return [quota, limits]


def runtime_class() -> Manifest:
    """The cluster-scoped RuntimeClass that maps ``gvisor`` to the runsc handler."""
    return {
        "apiVersion": "node.k8s.io/v1",
        "kind": "RuntimeClass",
        "metadata": {"name": RUNTIME_CLASS, "labels": {LABEL_MANAGED: "stockade"}},
        "handler": RUNTIME_HANDLER,
    }
