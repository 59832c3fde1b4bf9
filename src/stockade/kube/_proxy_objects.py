"""The egress proxy as Kubernetes objects (pure): stockade's own proxy in gVisor, shared by the
allowlist runs of every server, in its own namespace.

- ``Namespace`` (Pod Security ``restricted``) with its own default-deny NetworkPolicy;
- ``NetworkPolicy stockade-egress-proxy``: only stockade workload Pods (role ``workload`` in a
  namespace managed by stockade) reach the proxy, on its port; the proxy reaches cluster DNS
  (53) and TCP 80/443 on public addresses only;
- ``ConfigMap stockade-egress-allowlists`` (run id -> domains) and ``Secret
  stockade-egress-tokens`` (run id -> SHA-256 of the run's token): *merged* objects, to which a
  run adds its own key and from which its rollback removes exactly that key;
- ``Deployment stockade-egress-proxy`` (runs ``stockade k8s egress-proxy``), image pinned by
  digest, the restricted security context, no service-account token, read-only mounts.
"""

from __future__ import annotations

import base64
import hashlib

from ._input import (
    EGRESS_PROXY_LABELS,
    PSA_LABELS,
    RUNTIME_CLASS,
    Manifest,
    RenderInput,
    hardened_pod,
    restricted_context,
)
from ._names import LABEL_MANAGED, LABEL_ROLE

__all__ = [
    "ALLOWLISTS",
    "CONFIG_DIR",
    "INFRA_ROLES",
    "MERGED",
    "PROXY_UID",
    "TOKENS",
    "proxy_objects",
    "proxy_policy_spec",
    "token_hash",
]

ALLOWLISTS = "stockade-egress-allowlists"
TOKENS = "stockade-egress-tokens"
#: (kind, name) of the objects runs merge their own key into.
MERGED = frozenset({("ConfigMap", ALLOWLISTS), ("Secret", TOKENS)})
#: Roles of the shared proxy infrastructure: a run's rollback keeps these (other runs use them).
INFRA_ROLES = frozenset(
    {
        "egress-namespace",
        "egress-default-deny",
        "egress-proxy-policy",
        "egress-proxy",
        "egress-allowlists",
        "egress-tokens",
    }
)
CONFIG_DIR = "/etc/stockade-egress"
PROXY_UID = 65532
#: Addresses the proxy's own NetworkPolicy never lets it reach (its allowlist checks refuse them
#: too: this is the second layer).
_PRIVATE_V4 = ("10.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16")
_PRIVATE_V6 = ("fc00::/7", "fe80::/10")
_RESOURCES = {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "128Mi"}


def token_hash(token: str) -> str:
    """What the proxy stores for a run: never the token itself."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _meta(inp: RenderInput, name: str, role: str) -> Manifest:
    labels = {LABEL_MANAGED: "stockade", LABEL_ROLE: role}
    return {"name": name, "namespace": inp.egress_namespace, "labels": labels}


def proxy_policy_spec(port: int) -> Manifest:
    """The proxy's own NetworkPolicy spec (the self-check compares against exactly this)."""
    workloads = {
        "namespaceSelector": {"matchLabels": {LABEL_MANAGED: "stockade"}},
        "podSelector": {"matchLabels": {LABEL_ROLE: "workload"}},
    }
    dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    web = [
        {"ipBlock": {"cidr": "0.0.0.0/0", "except": list(_PRIVATE_V4)}},
        {"ipBlock": {"cidr": "::/0", "except": list(_PRIVATE_V6)}},
    ]
    return {
        "podSelector": {"matchLabels": dict(EGRESS_PROXY_LABELS)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [{"from": [workloads], "ports": [{"protocol": "TCP", "port": port}]}],
        "egress": [
            {
                "to": [dns],
                "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
            },
            {"to": web, "ports": [{"protocol": "TCP", "port": p} for p in (80, 443)]},
        ],
    }


def _deployment(inp: RenderInput) -> Manifest:
    port = inp.egress_proxy_port
    pod_labels = {**EGRESS_PROXY_LABELS, LABEL_MANAGED: "stockade", LABEL_ROLE: "egress-proxy"}
    container = {
        "name": "proxy",
        "image": str(inp.egress_proxy_image),
        "imagePullPolicy": "IfNotPresent",
        "command": ["stockade", "k8s", "egress-proxy"],
        "args": ["--listen", f"0.0.0.0:{port}", "--config", CONFIG_DIR],
        "ports": [{"name": "proxy", "containerPort": port, "protocol": "TCP"}],
        "securityContext": restricted_context(PROXY_UID, PROXY_UID),
        "resources": {"requests": dict(_RESOURCES), "limits": dict(_RESOURCES)},
        "volumeMounts": [
            {"name": "allowlists", "mountPath": f"{CONFIG_DIR}/allowlists", "readOnly": True},
            {"name": "tokens", "mountPath": f"{CONFIG_DIR}/tokens", "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},  # nosec B108  # noqa: S108 - per-run sockets
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    pod_spec = {
        "runtimeClassName": RUNTIME_CLASS,
        **hardened_pod(),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": PROXY_UID,
            "runAsGroup": PROXY_UID,
            "fsGroup": PROXY_UID,
            "supplementalGroups": [],
            "seccompProfile": {"type": "RuntimeDefault"},
            "appArmorProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [
            {"name": "allowlists", "configMap": {"name": ALLOWLISTS, "defaultMode": 0o440}},
            {
                "name": "tokens",
                "projected": {"defaultMode": 0o440, "sources": [{"secret": {"name": TOKENS}}]},
            },
            {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(inp, "stockade-egress-proxy", "egress-proxy"),
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": dict(EGRESS_PROXY_LABELS)},
            "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
        },
    }


def proxy_objects(inp: RenderInput, token: str) -> list[Manifest]:
    """The proxy's namespace, policies, this run's entries and the proxy itself (apply order)."""
    ns_labels = {**PSA_LABELS, LABEL_ROLE: "egress-namespace"}  # not a run namespace
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": inp.egress_namespace, "labels": ns_labels},
    }
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(inp, "stockade-egress-default-deny", "egress-default-deny"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }
    policy = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(inp, "stockade-egress-proxy", "egress-proxy-policy"),
        "spec": proxy_policy_spec(inp.egress_proxy_port),
    }
    allowlists = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(inp, ALLOWLISTS, "egress-allowlists"),
        "data": {inp.run_id: "\n".join(inp.spec.network.domains)},
    }
    digest = base64.b64encode(token_hash(token).encode("ascii")).decode("ascii")
    tokens = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(inp, TOKENS, "egress-tokens"),
        "type": "Opaque",
        "data": {inp.run_id: digest},
    }
    return [namespace, deny, policy, allowlists, tokens, _deployment(inp)]
