"""The render input, constants and helpers shared by the Pod and the objects around it (pure)."""

from __future__ import annotations

import base64
import ipaddress
import math
from collections.abc import Mapping
from typing import Any

from pydantic import Field, field_validator

from stockade.models import Frozen, PinnedImage, SandboxSpec

from ._errors import KubeError
from ._names import (
    LABEL_MANAGED,
    LABEL_ROLE,
    LABEL_RUN,
    LABEL_SERVER,
    check_namespace,
    check_run_id,
    slug,
)

__all__ = [
    "EGRESS_PROXY_LABELS",
    "EPHEMERAL_OVERHEAD_MB",
    "MAX_MILLICORES",
    "PSA_LABELS",
    "RUNTIME_CLASS",
    "RUNTIME_HANDLER",
    "SECRETS_DIR",
    "Manifest",
    "RenderInput",
    "hardened_pod",
    "names_for_run",
    "namespace_meta",
    "object_meta",
    "pod_resources",
    "proxy_ip",
    "restricted_context",
    "run_names",
    "secret",
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
    #: stockade's own image (pinned by digest) the egress proxy Deployment runs.
    egress_proxy_image: PinnedImage | None = None
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


def hardened_pod() -> Manifest:
    """Pod-level fields every Pod stockade renders sets: no token, no links, no host sharing."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "shareProcessNamespace": False,
        "os": {"name": "linux"},
    }


def restricted_context(uid: int, gid: int) -> Manifest:
    """The container securityContext of every Pod stockade renders (Pod Security restricted)."""
    return {
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": gid,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
        "appArmorProfile": {"type": "RuntimeDefault"},
        "procMount": "Default",
    }


def object_meta(inp: RenderInput, name: str, role: str, *, namespaced: bool = True) -> Manifest:
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


def run_names(inp: RenderInput) -> dict[str, str]:
    return names_for_run(inp.run_id)


def names_for_run(run_id: str) -> dict[str, str]:
    """The names of one run's own objects (everything else in a render is shared by runs)."""
    base = f"stockade-{run_id}"
    return {
        "pod": base,
        "secrets": f"{base}-secrets",
        "egress": f"{base}-egress",
        "netpol": f"{base}-egress-proxy",
    }


def proxy_ip(inp: RenderInput) -> str:
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
    if inp.egress_proxy_image is None:
        raise KubeError(
            "network profile 'allowlist' needs the egress proxy's image (got none)",
            "set kubernetes.egress_proxy_image in the policy or pass --egress-proxy-image "
            "REGISTRY/REPO@sha256:... (stockade's own image, from a registry the policy lists)",
        )
    if len(inp.egress_token) < 32:
        raise KubeError("the per-run egress token is shorter than 32 characters", "use a new one")
    return str(ip)


def secret(inp: RenderInput, name: str, role: str, data: Mapping[str, bytes]) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": object_meta(inp, name, role),
        "type": "Opaque",
        "immutable": True,
        "data": {k: base64.b64encode(v).decode("ascii") for k, v in sorted(data.items())},
    }


def namespace_meta(inp: RenderInput, name: str, role: str) -> Manifest:
    meta = object_meta(inp, name, role)
    del meta["labels"][LABEL_RUN]
    return meta
