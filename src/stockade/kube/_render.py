"""Render one run's Kubernetes objects from the same :class:`SandboxSpec` the local runner uses.

Pure: values in, plain dicts out (in apply order). A spec field Kubernetes cannot apply is a
:class:`KubeError` naming it, never a silently weaker Pod.
"""

from __future__ import annotations

import math

from stockade.models import Runtime, SandboxSpec

from ._errors import KubeError
from ._input import (
    EGRESS_PROXY_LABELS,
    PSA_LABELS,
    RUNTIME_CLASS,
    RUNTIME_HANDLER,
    SECRETS_DIR,
    Manifest,
    RenderInput,
    hardened_pod,
    object_meta,
    pod_resources,
    restricted_context,
    run_names,
    secret,
)
from ._names import PREFIX, run_fs_group
from ._objects import default_deny, egress_objects, namespace, quota_and_limits, runtime_class

__all__ = [
    "EGRESS_PROXY_LABELS",
    "PSA_LABELS",
    "RUNTIME_CLASS",
    "RUNTIME_HANDLER",
    "SECRETS_DIR",
    "Manifest",
    "RenderInput",
    "pod_resources",
    "render",
    "runtime_class",
]


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


def _pod(inp: RenderInput) -> Manifest:
    spec, names = inp.spec, run_names(inp)
    env: list[Manifest] = [{"name": k, "value": v} for k, v in spec.env]
    if spec.network.mode == "allowlist":
        ref = {"secretKeyRef": {"name": names["egress"], "key": "proxy-url"}}
        env += [{"name": n, "valueFrom": ref} for n in ("HTTPS_PROXY", "https_proxy")]
        env += [{"name": n, "valueFrom": ref} for n in ("HTTP_PROXY", "http_proxy")]
        env += [{"name": n, "value": ""} for n in ("NO_PROXY", "no_proxy")]
    res = pod_resources(spec)
    volumes: list[Manifest] = [{"name": "tmp", "emptyDir": {"sizeLimit": f"{spec.tmp_size_mb}Mi"}}]
    mounts: list[Manifest] = [{"name": "tmp", "mountPath": "/tmp"}]  # nosec B108  # noqa: S108
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
        "securityContext": restricted_context(spec.uid, spec.gid),
        "resources": {"requests": dict(res), "limits": dict(res)},
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if not inp.image_entrypoint:
        container["command"] = list(spec.argv)
    if not inp.image_entrypoint or spec.cwd != "/":
        container["workingDir"] = spec.cwd
    meta = object_meta(inp, names["pod"], "workload")
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
            **hardened_pod(),
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
    return [secret(inp, run_names(inp)["secrets"], "secrets", inp.secret_values)]


def render(inp: RenderInput) -> tuple[Manifest, ...]:
    """Every object of one run, in apply order: cluster, namespace, policy, secrets, Pod."""
    _refuse_unsupported(inp.spec)
    out: list[Manifest] = [runtime_class(), namespace(inp), default_deny(inp)]
    out += quota_and_limits(inp)
    if inp.spec.network.mode == "allowlist":
        out += egress_objects(inp)
    out += _run_secrets(inp)
    out.append(_pod(inp))
    return tuple(out)
