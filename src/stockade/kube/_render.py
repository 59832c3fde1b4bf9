"""Render one run's Kubernetes objects from the same :class:`SandboxSpec` the local runner uses.

Pure: values in, plain dicts out (in apply order). A spec field Kubernetes cannot apply is a
:class:`KubeError` naming it, never a silently weaker Pod.
"""

from __future__ import annotations

import base64
import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from stockade.models import Frozen, PinnedImage, Runtime, SandboxSpec

from ._errors import KubeError
from ._names import (
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_RUN,
    LABEL_SERVER,
    PREFIX,
    check_namespace,
    check_run_id,
    run_fs_group,
    slug,
)

__all__ = [
    "EGRESS_PROXY_LABELS",
    "RUNTIME_CLASS",
    "SECRETS_DIR",
    "Manifest",
    "RenderInput",
    "pod_resources",
    "render",
    "runtime_class",
]

Manifest = dict[str, Any]

RUNTIME_CLASS = "gvisor"
RUNTIME_HANDLER = "runsc"
SECRETS_DIR = "/run/secrets"
EGRESS_PROXY_LABELS = {"app.kubernetes.io/name": "stockade-egress-proxy"}
PSA_LABELS = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "audit", "warn")
} | {
    f"pod-security.kubernetes.io/{mode}-version": "latest" for mode in ("enforce", "audit", "warn")
}
#: Writable layer, logs and the /tmp emptyDir share this much beyond tmp_size_mb.
EPHEMERAL_OVERHEAD_MB = 64
#: The CPU rate cap: at most one core.
MAX_MILLICORES = 1000


class RenderInput(Frozen):
    """Everything a render needs; ``egress_*`` only for ``allowlist`` network profiles."""

    spec: SandboxSpec
    image: PinnedImage
    server: str = Field(min_length=1)
    run_id: str
    namespace: str
    egress_namespace: str = "stockade-egress"
    egress_proxy_ip: str | None = None
    egress_proxy_port: int = Field(default=3128, gt=0, lt=65536)
    egress_token: str | None = None
    #: Values of the granted secrets (by stockade secret name); rendered into the run's Secret.
    secret_values: Mapping[str, bytes] = Field(default_factory=dict)
    max_pods: int = Field(default=10, gt=0, le=1000)
    #: Run the image's own ENTRYPOINT/CMD (a policy ``image:`` server) instead of ``spec.argv``.
    image_entrypoint: bool = False

    @field_validator("run_id")
    @classmethod
    def _run(cls, v: str) -> str:
        check_run_id(v)
        return v

    @field_validator("namespace", "egress_namespace")
    @classmethod
    def _ns(cls, v: str) -> str:
        check_namespace(v)
        return v


def _meta(inp: RenderInput, name: str, role: str, *, namespaced: bool = True) -> Manifest:
    meta: Manifest = {
        "name": name,
        "labels": {
            LABEL_MANAGED: "stockade",
            LABEL_SERVER: slug(inp.server),
            LABEL_RUN: inp.run_id,
            LABEL_ROLE: role,
        },
    }
    if namespaced:
        meta["namespace"] = inp.namespace
    return meta


def _refuse_unsupported(spec: SandboxSpec) -> None:
    if spec.runtime == Runtime.NAMESPACES:
        raise KubeError(
            "the spec asks for runtime 'namespaces'; the Kubernetes backend runs gVisor only",
            "set runtime: gvisor for this server",
        )
    if spec.binds:
        raise KubeError(
            f"the spec mounts {len(spec.binds)} host path(s) ({spec.binds[0].source}, ...); "
            "a Pod gets no hostPath volumes",
            "drop fs_allowlist for servers run on Kubernetes (bake data into the image)",
        )


def _millicores(spec: SandboxSpec) -> int:
    """CPU rate such that rate x deadline never exceeds the spec's CPU-time budget."""
    m = min(MAX_MILLICORES, math.floor(1000 * spec.cpu_seconds / math.ceil(spec.timeout_s)))
    if m < 1:
        raise KubeError(
            f"cpu_seconds={spec.cpu_seconds:g} over timeout_s={spec.timeout_s:g} is below the "
            "smallest CPU limit Kubernetes expresses (1m)",
            "raise cpu_seconds or lower timeout_s",
        )
    return m


def pod_resources(spec: SandboxSpec) -> dict[str, str]:
    """Per-container quantities (requests equal limits: Guaranteed QoS)."""
    return {
        "cpu": f"{_millicores(spec)}m",
        "memory": f"{spec.memory_mb}Mi",
        "ephemeral-storage": f"{spec.tmp_size_mb + EPHEMERAL_OVERHEAD_MB}Mi",
    }


def _names(inp: RenderInput) -> dict[str, str]:
    base = f"stockade-{inp.run_id}"
    return {
        "pod": base,
        "secrets": f"{base}-secrets",
        "egress": f"{base}-egress",
        "netpol": f"{base}-egress-proxy",
    }


def _proxy_ip(inp: RenderInput) -> str:
    if inp.egress_proxy_ip is None or inp.egress_token is None:
        raise KubeError(
            "network profile 'allowlist' needs the egress proxy's Service IP and a per-run token "
            "(got none)",
            "pass --egress-proxy-ip (the Pod has no DNS, so the proxy is reached by IP)",
        )
    try:
        ip = ipaddress.ip_address(inp.egress_proxy_ip)
    except ValueError:
        raise KubeError(
            f"egress proxy IP {inp.egress_proxy_ip[:60]!r} is not an IP address",
            "pass the proxy Service's ClusterIP",
        ) from None
    if ip.is_unspecified or ip.is_multicast or ip.is_loopback:
        raise KubeError(f"egress proxy IP {ip} is not a unicast address", "pass its ClusterIP")
    if len(inp.egress_token) < 32:
        raise KubeError("the per-run egress token is shorter than 32 characters", "use a new one")
    return str(ip)


def _container_security(spec: SandboxSpec) -> Manifest:
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": spec.uid,
        "runAsGroup": spec.gid,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "appArmorProfile": {"type": "RuntimeDefault"},
        "procMount": "Default",
    }


def _pod(inp: RenderInput) -> Manifest:
    spec, names = inp.spec, _names(inp)
    env: list[Manifest] = [{"name": k, "value": v} for k, v in spec.env]
    if spec.network.mode == "allowlist":
        ref = {"secretKeyRef": {"name": names["egress"], "key": "proxy-url"}}
        env += [{"name": n, "valueFrom": ref} for n in ("HTTPS_PROXY", "https_proxy")]
        env += [{"name": n, "valueFrom": ref} for n in ("HTTP_PROXY", "http_proxy")]
        env += [{"name": n, "value": ""} for n in ("NO_PROXY", "no_proxy")]
    res = pod_resources(spec)
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {"sizeLimit": f"{spec.tmp_size_mb}Mi"}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - in-Pod path
    if spec.secrets:
        items = [{"key": n, "path": n, "mode": 0o440} for n in spec.secrets]
        volumes.append(
            {
                "name": "secrets",
                "projected": {
                    "defaultMode": 0o440,
                    "sources": [{"secret": {"name": names["secrets"], "items": items}}],
                },
            }
        )
        mounts.append({"name": "secrets", "mountPath": SECRETS_DIR, "readOnly": True})
    container: Manifest = {
        "name": "server",
        "image": str(inp.image),
        "imagePullPolicy": "IfNotPresent",
        "env": env,
        "stdin": True,
        "stdinOnce": True,
        "tty": False,
        "securityContext": _container_security(spec),
        "resources": {"requests": dict(res), "limits": dict(res)},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if not inp.image_entrypoint:
        container["command"] = list(spec.argv)
    if not inp.image_entrypoint or spec.cwd != "/":
        container["workingDir"] = spec.cwd
    meta = _meta(inp, names["pod"], "workload")
    meta["annotations"] = {
        f"{PREFIX}/server-name": inp.server,
        f"{PREFIX}/pids-limit": str(spec.pids),
        f"{PREFIX}/cpu-seconds": f"{spec.cpu_seconds:g}",
        f"{PREFIX}/network": spec.network.mode,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": {
            "runtimeClassName": RUNTIME_CLASS,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": max(1, math.ceil(spec.timeout_s)),
            "terminationGracePeriodSeconds": 5,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "hostNetwork": False,
            "hostPID": False,
            "hostIPC": False,
            "shareProcessNamespace": False,
            "os": {"name": "linux"},
            # No cluster DNS: names are resolved by the egress proxy (a DNS tunnel exfiltrates).
            "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["127.0.0.1"], "searches": [], "options": []},
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": spec.uid,
                "runAsGroup": spec.gid,
                "fsGroup": run_fs_group(inp.run_id),
                "fsGroupChangePolicy": "Always",
                "supplementalGroups": [],
                "seccompProfile": {"type": "RuntimeDefault"},
                "appArmorProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": volumes,
        },
    }


def _secret(inp: RenderInput, name: str, role: str, data: Mapping[str, bytes]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(inp, name, role),
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())},
    }


def _run_secrets(inp: RenderInput) -> list[Manifest]:
    granted, given = set(inp.spec.secrets), set(inp.secret_values)
    if granted != given:
        raise KubeError(
            f"secret values do not match the grant (granted {sorted(granted)}, got values for "
            f"{sorted(given)})",
            "supply exactly the secrets the policy grants this server",
        )
    if not granted:
        return []
    return [_secret(inp, _names(inp)["secrets"], "secrets", inp.secret_values)]


def _namespace(inp: RenderInput) -> Manifest:
    meta = _meta(inp, inp.namespace, "namespace", namespaced=False)
    del meta["labels"][LABEL_RUN]
    meta["labels"].update(PSA_LABELS)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def _ns_meta(inp: RenderInput, name: str, role: str) -> Manifest:
    meta = _meta(inp, name, role)
    del meta["labels"][LABEL_RUN]
    return meta


def _default_deny(inp: RenderInput) -> Manifest:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _ns_meta(inp, "stockade-default-deny", "default-deny"),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def _egress_objects(inp: RenderInput) -> list[Manifest]:
    """Per-run allow rule to the proxy only (no DNS), its Service and the run's token."""
    ip, names = _proxy_ip(inp), _names(inp)
    assert inp.egress_token is not None  # noqa: S101 - checked by _proxy_ip
    url = f"http://{inp.run_id}:{inp.egress_token}@{ip}:{inp.egress_proxy_port}"
    token = _secret(
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
        "metadata": _meta(inp, names["netpol"], "egress"),
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
    svc_meta = _ns_meta(inp, "stockade-egress", "egress-proxy")
    svc_meta["namespace"] = inp.egress_namespace
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
    return [service, token, netpol]


def _quota(inp: RenderInput) -> list[Manifest]:
    res, n = pod_resources(inp.spec), inp.max_pods
    cpu_m = int(res["cpu"][:-1]) * n
    mem = inp.spec.memory_mb * n
    eph = (inp.spec.tmp_size_mb + EPHEMERAL_OVERHEAD_MB) * n
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _ns_meta(inp, "stockade-quota", "quota"),
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
        "metadata": _ns_meta(inp, "stockade-limits", "limits"),
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


def render(inp: RenderInput) -> tuple[Manifest, ...]:
    """Every object of one run, in apply order: cluster, namespace, policy, secrets, Pod."""
    _refuse_unsupported(inp.spec)
    out: list[Manifest] = [runtime_class(), _namespace(inp), _default_deny(inp)]
    out += _quota(inp)
    if inp.spec.network.mode == "allowlist":
        out += _egress_objects(inp)
    out += _run_secrets(inp)
    out.append(_pod(inp))
    return tuple(out)
