"""Kubernetes backend: render hardened Pods on gVisor with default-deny networking from the same
SandboxSpec, check them, export cluster policies, and plan/apply/roll back (dry-run by default).
See docs/kubernetes.md."""

from ._apply import ApplyResult, RollbackResult, apply_run, rollback_run
from ._attach import (
    ATTACH_POLL_S,
    STDERR_LIMIT_BYTES,
    AttachApi,
    AttachStream,
    BoundedLog,
    Pumped,
    pump,
)
from ._attached import STDERR_KILL_BYTES, AttachedPod
from ._check import ADMISSION_KINDS, check_rendered, rules_for, verify_rendered
from ._cluster import ClusterApi, ObjRef, ref_of
from ._egress_proxy import ClusterEgressProxy, LineSink, Tenant, authenticate, load_tenants
from ._errors import KubeError, PreflightError
from ._from_policy import RunParams, render_server
from ._gatekeeper import DEFAULT_SECRET_PATTERNS, ExportParams, gatekeeper
from ._kuberun import KubeRun, run_pod, run_pod_attached, wait_running
from ._kyverno import KYVERNO_COVERAGE, kyverno
from ._launcher import KubeLauncher, Render, policy_renderer
from ._names import check_namespace, check_run_id, namespace_for, run_fs_group, slug
from ._outcome import PodOutcome, pod_outcome
from ._plan import Action, Change, Plan, diff_text, make_plan, project
from ._preflight import Facts, networkpolicy_enforced, preflight, problems
from ._proxy_objects import CONFIG_DIR, proxy_policy_spec, token_hash
from ._records import RecordStore, default_record_dir
from ._rego import REGO_PACKAGE, rego_module
from ._rego_cluster import NAMESPACE_PACKAGE, NETPOL_PACKAGE, namespace_module, netpol_module
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
from ._rollback import RecordedChange, RollbackRecord, RollbackStep, record_for, steps
from ._supervise import LOG_LIMIT_BYTES, PodApi, Supervised, supervise
from ._yaml import REDACTED, dump_all, redact

__all__ = [
    "ADMISSION_KINDS",
    "ATTACH_POLL_S",
    "CONFIG_DIR",
    "DEFAULT_SECRET_PATTERNS",
    "EGRESS_PROXY_LABELS",
    "KYVERNO_COVERAGE",
    "LOG_LIMIT_BYTES",
    "NAMESPACE_PACKAGE",
    "NETPOL_PACKAGE",
    "REDACTED",
    "REGO_PACKAGE",
    "RUNTIME_CLASS",
    "SECRETS_DIR",
    "STDERR_KILL_BYTES",
    "STDERR_LIMIT_BYTES",
    "Action",
    "ApplyResult",
    "AttachApi",
    "AttachStream",
    "AttachedPod",
    "BoundedLog",
    "Change",
    "ClusterApi",
    "ClusterEgressProxy",
    "ExportParams",
    "Facts",
    "KubeError",
    "KubeLauncher",
    "KubeRun",
    "LineSink",
    "Manifest",
    "ObjRef",
    "Plan",
    "PodApi",
    "PodOutcome",
    "PreflightError",
    "Pumped",
    "RecordStore",
    "RecordedChange",
    "Render",
    "RenderInput",
    "RollbackRecord",
    "RollbackResult",
    "RollbackStep",
    "RunParams",
    "Supervised",
    "Tenant",
    "apply_run",
    "authenticate",
    "check_namespace",
    "check_rendered",
    "check_run_id",
    "default_record_dir",
    "diff_text",
    "dump_all",
    "gatekeeper",
    "kyverno",
    "load_tenants",
    "make_plan",
    "namespace_for",
    "namespace_module",
    "netpol_module",
    "networkpolicy_enforced",
    "pod_outcome",
    "pod_resources",
    "policy_renderer",
    "preflight",
    "problems",
    "project",
    "proxy_policy_spec",
    "pump",
    "record_for",
    "redact",
    "ref_of",
    "rego_module",
    "render",
    "render_server",
    "rollback_run",
    "rules_for",
    "run_fs_group",
    "run_pod",
    "run_pod_attached",
    "runtime_class",
    "slug",
    "steps",
    "supervise",
    "token_hash",
    "verify_rendered",
    "wait_running",
]
