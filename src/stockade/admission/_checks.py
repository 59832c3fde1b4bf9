"""The check registry and the pure entry point :func:`evaluate`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stockade.errors import UsageError

from . import _baseline as b
from . import _restricted as r
from . import _stockade as s
from ._model import AdmissionResult, Level, StockadeRules, Verdict, Violation
from ._pod import PodView, pod_view

__all__ = ["CHECKS", "CheckDef", "check_ids", "checks_for", "evaluate"]

CheckFn = Callable[[PodView, StockadeRules], list[Violation]]


@dataclass(frozen=True)
class CheckDef:
    id: str
    level: Level
    fn: CheckFn
    overrides: tuple[str, ...] = ()  # baseline checks this (restricted) check replaces


# Order: baseline, restricted, stockade; ids sorted within a level, as Kubernetes orders them.
CHECKS: tuple[CheckDef, ...] = (
    CheckDef("appArmorProfile", Level.BASELINE, b.app_armor_profile),
    CheckDef("capabilities_baseline", Level.BASELINE, b.capabilities_baseline),
    CheckDef("hostNamespaces", Level.BASELINE, b.host_namespaces),
    CheckDef("hostPathVolumes", Level.BASELINE, b.host_path_volumes),
    CheckDef("hostPorts", Level.BASELINE, b.host_ports),
    CheckDef("hostProbesAndHostLifecycle", Level.BASELINE, b.host_probes_and_lifecycle),
    CheckDef("privileged", Level.BASELINE, b.privileged),
    CheckDef("procMount", Level.BASELINE, b.proc_mount_baseline),
    CheckDef("seLinuxOptions", Level.BASELINE, b.se_linux_options),
    CheckDef("seccompProfile_baseline", Level.BASELINE, b.seccomp_baseline),
    CheckDef("sysctls", Level.BASELINE, b.sysctls),
    CheckDef("windowsHostProcess", Level.BASELINE, b.windows_host_process),
    CheckDef("allowPrivilegeEscalation", Level.RESTRICTED, r.allow_privilege_escalation),
    CheckDef(
        "capabilities_restricted",
        Level.RESTRICTED,
        r.capabilities_restricted,
        ("capabilities_baseline",),
    ),
    CheckDef("procMount_restricted", Level.RESTRICTED, r.proc_mount_restricted, ("procMount",)),
    CheckDef("restrictedVolumes", Level.RESTRICTED, r.restricted_volumes, ("hostPathVolumes",)),
    CheckDef("runAsNonRoot", Level.RESTRICTED, r.run_as_non_root),
    CheckDef("runAsUser", Level.RESTRICTED, r.run_as_user),
    CheckDef(
        "seccompProfile_restricted",
        Level.RESTRICTED,
        r.seccomp_restricted,
        ("seccompProfile_baseline",),
    ),
    CheckDef("stockade_activeDeadline", Level.STOCKADE, s.active_deadline),
    CheckDef("stockade_appArmorRequired", Level.STOCKADE, s.app_armor_required),
    CheckDef("stockade_ephemeralStorage", Level.STOCKADE, s.ephemeral_storage),
    CheckDef("stockade_imageDigest", Level.STOCKADE, s.image_digest),
    CheckDef("stockade_linuxOnly", Level.STOCKADE, s.linux_only),
    CheckDef("stockade_readOnlyRootFilesystem", Level.STOCKADE, s.read_only_root),
    CheckDef("stockade_registryAllowlist", Level.STOCKADE, s.registry_allowlist),
    CheckDef("stockade_resources", Level.STOCKADE, s.resources),
    CheckDef("stockade_runtimeClass", Level.STOCKADE, s.runtime_class),
    CheckDef("stockade_secrets", Level.STOCKADE, s.secrets),
    CheckDef("stockade_serviceAccountToken", Level.STOCKADE, s.service_account_token),
)
_BY_ID = {c.id: c for c in CHECKS}
_RANK = {Level.BASELINE: 0, Level.RESTRICTED: 1, Level.STOCKADE: 2}


def check_ids() -> tuple[str, ...]:
    return tuple(c.id for c in CHECKS)


def checks_for(level: Level, only: frozenset[str] | set[str] | None = None) -> tuple[CheckDef, ...]:
    """The checks a level runs (overridden baseline checks dropped), or exactly ``only``."""
    if only is not None:
        unknown = sorted(set(only) - set(_BY_ID))
        if unknown:
            raise UsageError(
                f"unknown check id(s): {', '.join(unknown)}",
                f"use one of: {', '.join(check_ids())}",
            )
        if not only:
            raise UsageError("--only names no check", "name at least one check id")
        return tuple(c for c in CHECKS if c.id in only)
    chosen = [c for c in CHECKS if _RANK[c.level] <= _RANK[level]]
    overridden = {o for c in chosen for o in c.overrides}
    return tuple(c for c in chosen if c.id not in overridden)


def evaluate(
    obj: Mapping[str, Any],
    level: Level | str,
    rules: StockadeRules,
    only: frozenset[str] | set[str] | None = None,
) -> AdmissionResult:
    """Evaluate one Kubernetes object. Pure: no I/O, no clock.

    Raises :class:`ManifestError` when the object is not a known kind or a field it reads has
    the wrong type, and :class:`UsageError` for an unknown level or check id.
    """
    try:
        lvl = Level(level)
    except ValueError as e:
        raise UsageError(f"unknown level {level!r}", "use baseline, restricted or stockade") from e
    checks = checks_for(lvl, only)
    pod = pod_view(obj)
    meta = obj.get("metadata")
    kind = str(obj.get("kind"))
    name = (
        str(meta.get("name") or meta.get("generateName") or "") if isinstance(meta, Mapping) else ""
    )
    if pod is None:
        return AdmissionResult(kind=kind, name=name, verdict=Verdict.ALLOW, workload=False)
    violations: list[Violation] = []
    for check in checks:
        violations += check.fn(pod, rules)
    verdict = Verdict.DENY if violations else Verdict.ALLOW
    return AdmissionResult(
        kind=pod.kind, name=pod.name, verdict=verdict, violations=tuple(violations)
    )
