"""Pod Security Standards, restricted level (latest policy version).

Windows pods (``spec.os.name: windows``) are exempt from ``allowPrivilegeEscalation``,
``capabilities_restricted`` and ``seccompProfile_restricted``, as in Kubernetes 1.25+. Where a
restricted check replaces a baseline one (capabilities, seccomp), a Windows pod still gets the
baseline check under the restricted id: stockade never lets a higher level allow what a lower
level denies (Kubernetes relies on API validation for that; an offline validator cannot).
Pods in a user namespace (``spec.hostUsers: false``) are exempt from ``runAsNonRoot`` and
``runAsUser`` (1.35+).
"""

from __future__ import annotations

from ._access import get_bool, get_int, get_list, get_map, get_str_list, require_map
from ._baseline import (
    capabilities_baseline,
    container_sc,
    pod_sc,
    proc_mount_violations,
    seccomp_baseline,
    seccomp_type_ok,
)
from ._model import StockadeRules, Violation
from ._pod import PodView

__all__ = [
    "RESTRICTED_VOLUME_SOURCES",
    "allow_privilege_escalation",
    "capabilities_restricted",
    "proc_mount_restricted",
    "restricted_volumes",
    "run_as_non_root",
    "run_as_user",
    "seccomp_restricted",
]

RESTRICTED_VOLUME_SOURCES = frozenset(
    {
        "configMap",
        "csi",
        "downwardAPI",
        "emptyDir",
        "ephemeral",
        "image",
        "persistentVolumeClaim",
        "projected",
        "secret",
    }
)


def _relabel(violations: list[Violation], check: str) -> list[Violation]:
    return [v.model_copy(update={"check": check}) for v in violations]


def allow_privilege_escalation(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    if pod.windows:
        return []
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        if get_bool(sc, "allowPrivilegeEscalation", p) is not False:
            out.append(
                Violation(
                    check="allowPrivilegeEscalation",
                    path=f"{p}.allowPrivilegeEscalation",
                    message=f"container {c.name!r} does not set allowPrivilegeEscalation=false",
                    fix="set securityContext.allowPrivilegeEscalation: false",
                )
            )
    return out


def capabilities_restricted(pod: PodView, rules: StockadeRules) -> list[Violation]:
    if pod.windows:
        return _relabel(capabilities_baseline(pod, rules), "capabilities_restricted")
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        caps = get_map(sc, "capabilities", p) or {}
        cp = f"{p}.capabilities"
        if "ALL" not in (get_str_list(caps, "drop", cp) or ()):
            out.append(
                Violation(
                    check="capabilities_restricted",
                    path=f"{cp}.drop",
                    message=f'container {c.name!r} does not drop "ALL" capabilities',
                    fix='set securityContext.capabilities.drop: ["ALL"]',
                )
            )
        for i, cap in enumerate(get_str_list(caps, "add", cp) or ()):
            if cap != "NET_BIND_SERVICE":
                out.append(
                    Violation(
                        check="capabilities_restricted",
                        path=f"{cp}.add[{i}]",
                        message=f"container {c.name!r} adds capability {cap!r}",
                        fix="remove it; only NET_BIND_SERVICE may be added at restricted",
                    )
                )
    return out


def run_as_non_root(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    if pod.user_namespace:
        return []
    out = []
    psc, pp = pod_sc(pod)
    pod_value = get_bool(psc, "runAsNonRoot", pp)
    if pod_value is False:
        out.append(
            Violation(
                check="runAsNonRoot",
                path=f"{pp}.runAsNonRoot",
                message="pod sets runAsNonRoot=false",
                fix="set spec.securityContext.runAsNonRoot: true",
            )
        )
    for c in pod.containers:
        sc, p = container_sc(c)
        value = get_bool(sc, "runAsNonRoot", p)
        if value is False:
            msg = f"container {c.name!r} sets runAsNonRoot=false"
        elif value is None and pod_value is not True:
            msg = f"neither the pod nor container {c.name!r} sets runAsNonRoot=true"
        else:
            continue
        out.append(
            Violation(
                check="runAsNonRoot",
                path=f"{p}.runAsNonRoot",
                message=msg,
                fix="set runAsNonRoot: true on the pod securityContext (or every container)",
            )
        )
    return out


def run_as_user(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    if pod.user_namespace:
        return []
    psc, pp = pod_sc(pod)
    holders = [(psc, pp, "pod")] + [
        (*container_sc(c), f"container {c.name!r}") for c in pod.containers
    ]
    return [
        Violation(
            check="runAsUser",
            path=f"{p}.runAsUser",
            message=f"{who} sets runAsUser=0 (root)",
            fix="set runAsUser to a non-zero uid (stockade uses 65532) or remove it",
        )
        for sc, p, who in holders
        if get_int(sc, "runAsUser", p) == 0
    ]


def seccomp_restricted(pod: PodView, rules: StockadeRules) -> list[Violation]:
    if pod.windows:
        return _relabel(seccomp_baseline(pod, rules), "seccompProfile_restricted")
    fix = "set spec.securityContext.seccompProfile.type: RuntimeDefault (or Localhost)"
    out = []
    psc, pp = pod_sc(pod)
    pod_ok = False
    prof = get_map(psc, "seccompProfile", pp)
    if prof is not None:
        pod_ok, t = seccomp_type_ok(prof, f"{pp}.seccompProfile")
        if not pod_ok:
            out.append(
                Violation(
                    check="seccompProfile_restricted",
                    path=f"{pp}.seccompProfile.type",
                    message=f"pod sets seccomp profile type {t!r}",
                    fix=fix,
                )
            )
    for c in pod.containers:
        sc, p = container_sc(c)
        prof = get_map(sc, "seccompProfile", p)
        if prof is not None:
            ok, t = seccomp_type_ok(prof, f"{p}.seccompProfile")
            if ok:
                continue
            msg = f"container {c.name!r} sets seccomp profile type {t!r}"
            path = f"{p}.seccompProfile.type"
        elif not pod_ok:
            msg = f"neither the pod nor container {c.name!r} sets a seccomp profile"
            path = f"{p}.seccompProfile"
        else:
            continue
        out.append(Violation(check="seccompProfile_restricted", path=path, message=msg, fix=fix))
    return out


def restricted_volumes(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for i, item in enumerate(get_list(pod.spec, "volumes", pod.spec_path) or ()):
        path = f"{pod.spec_path}.volumes[{i}]"
        vol = require_map(item, path)
        sources = sorted(str(k) for k, v in vol.items() if k != "name" and v is not None)
        bad = [s for s in sources if s not in RESTRICTED_VOLUME_SOURCES]
        name = vol.get("name")
        out += [
            Violation(
                check="restrictedVolumes",
                path=f"{path}.{source}",
                message=f"volume {name!r} uses restricted volume type {source!r}",
                fix="use configMap, csi, downwardAPI, emptyDir, ephemeral, image, "
                "persistentVolumeClaim, projected or secret",
            )
            for source in bad
        ]
    return out


def proc_mount_restricted(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    return proc_mount_violations(pod, "procMount_restricted")
