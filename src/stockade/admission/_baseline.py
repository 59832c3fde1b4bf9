"""Pod Security Standards, baseline level (latest policy version).

Each check reads the fields Kubernetes' pod-security-admission reads for the same check id and
returns one :class:`Violation` per offending field, with the full path from the document root.
Containers are visited in Kubernetes' order: init, app, ephemeral.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._access import get_bool, get_int, get_list, get_map, get_str, get_str_list, require_map
from ._model import StockadeRules, Violation
from ._pod import Container, PodView

__all__ = [
    "BASELINE_CAPABILITIES",
    "SAFE_SYSCTLS",
    "SELINUX_TYPES",
    "app_armor_profile",
    "capabilities_baseline",
    "container_sc",
    "host_namespaces",
    "host_path_volumes",
    "host_ports",
    "host_probes_and_lifecycle",
    "pod_sc",
    "privileged",
    "proc_mount_baseline",
    "proc_mount_violations",
    "se_linux_options",
    "seccomp_baseline",
    "seccomp_type_ok",
    "sysctls",
    "windows_host_process",
]

BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)

# The "safe" sysctls of the newest policy version (1.0: first five; 1.27: ip_local_reserved_ports;
# 1.29: tcp keepalive/fin; 1.32: tcp_rmem/tcp_wmem; 1.37: tcp_slow_start_after_idle/notsent_lowat).
SAFE_SYSCTLS = frozenset(
    {
        "kernel.shm_rmid_forced",
        "net.ipv4.ip_local_port_range",
        "net.ipv4.tcp_syncookies",
        "net.ipv4.ping_group_range",
        "net.ipv4.ip_unprivileged_port_start",
        "net.ipv4.ip_local_reserved_ports",
        "net.ipv4.tcp_keepalive_time",
        "net.ipv4.tcp_fin_timeout",
        "net.ipv4.tcp_keepalive_intvl",
        "net.ipv4.tcp_keepalive_probes",
        "net.ipv4.tcp_rmem",
        "net.ipv4.tcp_wmem",
        "net.ipv4.tcp_slow_start_after_idle",
        "net.ipv4.tcp_notsent_lowat",
    }
)

SELINUX_TYPES = frozenset(
    {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
)
_PROFILE_TYPES = frozenset({"RuntimeDefault", "Localhost"})
_APPARMOR_ANNOTATION = "container.apparmor.security.beta.kubernetes.io/"
_HANDLERS = ("httpGet", "tcpSocket")


def pod_sc(pod: PodView) -> tuple[Mapping[str, Any], str]:
    path = f"{pod.spec_path}.securityContext"
    return get_map(pod.spec, "securityContext", pod.spec_path) or {}, path


def container_sc(c: Container) -> tuple[Mapping[str, Any], str]:
    return get_map(c.obj, "securityContext", c.path) or {}, f"{c.path}.securityContext"


def _v(check: str, path: str, message: str, fix: str) -> Violation:
    return Violation(check=check, path=path, message=message, fix=fix)


def privileged(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        if get_bool(sc, "privileged", p):
            out.append(
                _v(
                    "privileged",
                    f"{p}.privileged",
                    f"container {c.name!r} is privileged",
                    "remove privileged or set it to false",
                )
            )
    return out


def host_namespaces(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if get_bool(pod.spec, field, pod.spec_path):
            out.append(
                _v(
                    "hostNamespaces",
                    f"{pod.spec_path}.{field}",
                    f"{field}=true shares a host namespace",
                    f"remove {field} or set it to false",
                )
            )
    return out


def _volumes(pod: PodView) -> list[tuple[Mapping[str, Any], str, str]]:
    out = []
    for i, item in enumerate(get_list(pod.spec, "volumes", pod.spec_path) or ()):
        path = f"{pod.spec_path}.volumes[{i}]"
        vol = require_map(item, path)
        out.append((vol, path, get_str(vol, "name", path) or f"#{i}"))
    return out


def host_path_volumes(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    return [
        _v(
            "hostPathVolumes",
            f"{path}.hostPath",
            f"volume {name!r} mounts a host path",
            "use an emptyDir, configMap, secret or persistentVolumeClaim volume instead",
        )
        for vol, path, name in _volumes(pod)
        if vol.get("hostPath") is not None
    ]


def host_ports(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for c in pod.containers:
        for i, item in enumerate(get_list(c.obj, "ports", c.path) or ()):
            path = f"{c.path}.ports[{i}]"
            port = get_int(require_map(item, path), "hostPort", path)
            if port:
                out.append(
                    _v(
                        "hostPorts",
                        f"{path}.hostPort",
                        f"container {c.name!r} binds host port {port}",
                        "remove hostPort (or set it to 0); expose the port through a Service",
                    )
                )
    return out


def capabilities_baseline(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        caps = get_map(sc, "capabilities", p) or {}
        for i, cap in enumerate(get_str_list(caps, "add", f"{p}.capabilities") or ()):
            if cap not in BASELINE_CAPABILITIES:
                out.append(
                    _v(
                        "capabilities_baseline",
                        f"{p}.capabilities.add[{i}]",
                        f"container {c.name!r} adds non-default capability {cap!r}",
                        "remove it; only the default set may be added at baseline "
                        f"({', '.join(sorted(BASELINE_CAPABILITIES))})",
                    )
                )
    return out


def _selinux(opts: Mapping[str, Any], path: str, who: str) -> list[Violation]:
    out = []
    type_ = get_str(opts, "type", path) or ""
    if type_ not in SELINUX_TYPES:
        out.append(
            _v(
                "seLinuxOptions",
                f"{path}.type",
                f"{who} sets SELinux type {type_!r}",
                "leave type unset or use container_t, container_init_t, container_kvm_t "
                "or container_engine_t",
            )
        )
    for field in ("user", "role"):
        if get_str(opts, field, path):
            out.append(
                _v(
                    "seLinuxOptions",
                    f"{path}.{field}",
                    f"{who} sets a custom SELinux {field}",
                    f"remove seLinuxOptions.{field}",
                )
            )
    return out


def se_linux_options(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    psc, pp = pod_sc(pod)
    out = []
    opts = get_map(psc, "seLinuxOptions", pp)
    if opts is not None:
        out += _selinux(opts, f"{pp}.seLinuxOptions", "pod")
    for c in pod.containers:
        sc, p = container_sc(c)
        opts = get_map(sc, "seLinuxOptions", p)
        if opts is not None:
            out += _selinux(opts, f"{p}.seLinuxOptions", f"container {c.name!r}")
    return out


def proc_mount_violations(pod: PodView, check: str) -> list[Violation]:
    out = []
    for c in pod.containers:
        sc, p = container_sc(c)
        mount = get_str(sc, "procMount", p)
        if mount is not None and mount != "Default":
            out.append(
                _v(
                    check,
                    f"{p}.procMount",
                    f"container {c.name!r} sets procMount {mount!r} (unmasked /proc)",
                    "remove procMount or set it to Default",
                )
            )
    return out


def proc_mount_baseline(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    if pod.user_namespace:  # 1.35+: any procMount is allowed in a user namespace
        return []
    return proc_mount_violations(pod, "procMount")


def seccomp_type_ok(profile: Mapping[str, Any], path: str) -> tuple[bool, str]:
    type_ = get_str(profile, "type", path) or ""
    return type_ in _PROFILE_TYPES, type_


def seccomp_baseline(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    fix = "set seccompProfile.type to RuntimeDefault or Localhost (or leave it unset)"
    out = []
    psc, pp = pod_sc(pod)
    prof = get_map(psc, "seccompProfile", pp)
    if prof is not None:
        ok, t = seccomp_type_ok(prof, f"{pp}.seccompProfile")
        if not ok:
            msg = f"pod sets seccomp profile type {t!r}"
            out.append(_v("seccompProfile_baseline", f"{pp}.seccompProfile.type", msg, fix))
    for c in pod.containers:
        sc, p = container_sc(c)
        prof = get_map(sc, "seccompProfile", p)
        if prof is not None:
            ok, t = seccomp_type_ok(prof, f"{p}.seccompProfile")
            if not ok:
                msg = f"container {c.name!r} sets seccomp profile type {t!r}"
                out.append(_v("seccompProfile_baseline", f"{p}.seccompProfile.type", msg, fix))
    return out


def app_armor_profile(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    fix = "set appArmorProfile.type to RuntimeDefault or Localhost (or leave it unset)"
    out = []
    psc, pp = pod_sc(pod)
    holders = [(psc, pp, "pod")] + [
        (*container_sc(c), f"container {c.name!r}") for c in pod.containers
    ]
    for sc, p, who in holders:
        prof = get_map(sc, "appArmorProfile", p)
        if prof is not None:
            type_ = get_str(prof, "type", f"{p}.appArmorProfile") or ""
            if type_ not in _PROFILE_TYPES:
                out.append(
                    _v(
                        "appArmorProfile",
                        f"{p}.appArmorProfile.type",
                        f"{who} sets AppArmor profile type {type_!r}",
                        fix,
                    )
                )
    for key, value in sorted(pod.annotations.items(), key=lambda kv: str(kv[0])):
        if not isinstance(key, str) or not key.startswith(_APPARMOR_ANNOTATION):
            continue
        ok = isinstance(value, str) and (
            value in {"", "runtime/default"} or value.startswith("localhost/")
        )
        if not ok:
            out.append(
                _v(
                    "appArmorProfile",
                    f"{pod.meta_path}.annotations[{key}]",
                    f"annotation sets AppArmor profile {value!r}",
                    "use runtime/default or localhost/<profile>, or better the "
                    "securityContext.appArmorProfile field",
                )
            )
    return out


def sysctls(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    psc, pp = pod_sc(pod)
    out = []
    for i, item in enumerate(get_list(psc, "sysctls", pp) or ()):
        path = f"{pp}.sysctls[{i}]"
        name = get_str(require_map(item, path), "name", path) or ""
        if name not in SAFE_SYSCTLS:
            out.append(
                _v(
                    "sysctls",
                    f"{path}.name",
                    f"sysctl {name!r} is not in the safe set",
                    f"remove it; allowed: {', '.join(sorted(SAFE_SYSCTLS))}",
                )
            )
    return out


def _handler_hosts(holder: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    out = []
    for handler in _HANDLERS:
        h = get_map(holder, handler, path)
        if h is not None:
            host = get_str(h, "host", f"{path}.{handler}")
            if host:
                out.append((f"{path}.{handler}.host", host))
    return out


def host_probes_and_lifecycle(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    out = []
    for c in pod.containers:
        found: list[tuple[str, str]] = []
        for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
            holder = get_map(c.obj, probe, c.path)
            if holder is not None:
                found += _handler_hosts(holder, f"{c.path}.{probe}")
        lifecycle = get_map(c.obj, "lifecycle", c.path) or {}
        for hook in ("postStart", "preStop"):
            holder = get_map(lifecycle, hook, f"{c.path}.lifecycle")
            if holder is not None:
                found += _handler_hosts(holder, f"{c.path}.lifecycle.{hook}")
        out += [
            _v(
                "hostProbesAndHostLifecycle",
                path,
                f"container {c.name!r} probes or hooks host {host!r}",
                "remove the host field: probes and hooks must target the pod's own IP",
            )
            for path, host in found
        ]
    return out


def windows_host_process(pod: PodView, _rules: StockadeRules) -> list[Violation]:
    psc, pp = pod_sc(pod)
    holders = [(psc, pp, "pod")] + [
        (*container_sc(c), f"container {c.name!r}") for c in pod.containers
    ]
    out = []
    for sc, p, who in holders:
        opts = get_map(sc, "windowsOptions", p) or {}
        if get_bool(opts, "hostProcess", f"{p}.windowsOptions"):
            out.append(
                _v(
                    "windowsHostProcess",
                    f"{p}.windowsOptions.hostProcess",
                    f"{who} runs as a Windows HostProcess",
                    "remove hostProcess or set it to false",
                )
            )
    return out
