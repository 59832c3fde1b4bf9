"""Render a :class:`SandboxSpec` as an OCI runtime ``config.json`` for runsc (pure)."""

from __future__ import annotations

from typing import Any

from stockade.models import SandboxSpec

from ._layout import HostLayout

__all__ = ["SANDBOX_TMP", "SECRETS_DIR", "guest_nofile", "oci_config"]

SECRETS_DIR = "/run/secrets"
#: The sandbox's own /tmp (a size-capped tmpfs inside the sandbox, not the host's /tmp).
SANDBOX_TMP = "/tmp"  # nosec B108  # noqa: S108
_RO = ["rbind", "ro", "nosuid", "nodev"]


def guest_nofile(spec: SandboxSpec) -> int:
    return 256


def oci_config(
    spec: SandboxSpec,
    layout: HostLayout,
    *,
    cgroup_path: str,
    memory_bytes: int,
    host_pids: int,
    secrets_source: str | None,
) -> dict[str, Any]:
    """The OCI config. ``rootfs`` (relative to the bundle) holds only mount points and /etc."""
    env = [f"{k}={v}" for k, v in spec.env]
    if not any(k == "PATH" for k, _ in spec.env):
        env.insert(0, "PATH=/usr/local/bin:/usr/bin:/bin")
    mounts: list[dict[str, Any]] = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid"]},
        {
            "destination": SANDBOX_TMP,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["nosuid", "nodev", "noexec", f"size={spec.tmp_size_mb}m", "mode=1777"],
        },
    ]
    for path in layout.ro_binds:
        mounts.append({"destination": path, "type": "bind", "source": path, "options": _RO})
    for b in spec.binds:
        opts = ["rbind", b.mode, "nosuid", "nodev"]
        mounts.append(
            {"destination": b.target, "type": "bind", "source": b.source, "options": opts}
        )
    if secrets_source is not None:
        mounts.append(
            {"destination": SECRETS_DIR, "type": "bind", "source": secrets_source, "options": _RO}
        )
    no_caps: dict[str, list[str]] = {
        k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")
    }
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": spec.uid, "gid": spec.gid, "additionalGids": []},
            "args": list(spec.argv),
            "env": env,
            "cwd": spec.cwd,
            "capabilities": no_caps,
            "noNewPrivileges": True,
            "rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": guest_nofile(spec), "soft": guest_nofile(spec)},
                {"type": "RLIMIT_NPROC", "hard": spec.pids, "soft": spec.pids},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0},
            ],
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "sandbox",
        "mounts": mounts,
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "cgroupsPath": cgroup_path,
            "resources": {
                "memory": {"limit": memory_bytes, "swap": memory_bytes},
                "pids": {"limit": host_pids},
                "cpu": {"quota": 100_000, "period": 100_000},
            },
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"],
        },
    }
