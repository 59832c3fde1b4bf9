"""Kubernetes backend: render hardened Pods on gVisor with default-deny networking from the same
SandboxSpec, check them, export cluster policies, and plan/apply/roll back (dry-run by default).
See docs/kubernetes.md."""

from ._check import ADMISSION_KINDS, check_rendered, rules_for, verify_rendered
from ._errors import KubeError, PreflightError
from ._from_policy import RunParams, render_server
from ._names import check_namespace, check_run_id, namespace_for, run_fs_group, slug
from ._render import (
    EGRESS_PROXY_LABELS,
    RUNTIME_CLASS,
    SECRETS_DIR,
    Manifest,
    RenderInput,
    pod_resources,
    render,
    runtime_class,
)
from ._yaml import REDACTED, dump_all, redact

__all__ = [
    "ADMISSION_KINDS",
    "EGRESS_PROXY_LABELS",
    "REDACTED",
    "RUNTIME_CLASS",
    "SECRETS_DIR",
    "KubeError",
    "Manifest",
    "PreflightError",
    "RenderInput",
    "RunParams",
    "check_namespace",
    "check_rendered",
    "check_run_id",
    "dump_all",
    "namespace_for",
    "pod_resources",
    "redact",
    "render",
    "render_server",
    "rules_for",
    "run_fs_group",
    "runtime_class",
    "slug",
    "verify_rendered",
]
