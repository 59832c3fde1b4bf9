"""Discover what this host can enforce: runsc and a working platform, bubblewrap, cgroups.

Nothing is assumed: a platform counts only after a tiny container ran on it within a bound.
"""

from __future__ import annotations

import json
import shutil
import subprocess  # nosec B404
import tempfile
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from stockade.errors import SandboxError

from ._layout import host_layout

__all__ = ["GvisorRuntime", "find_bwrap", "find_gvisor"]

_PROBE_TIMEOUT_S = 8.0


@dataclass(frozen=True)
class GvisorRuntime:
    runsc: str
    platform: str
    version: str


def _which(name: str) -> str | None:
    for d in ("/usr/bin", "/usr/sbin", "/usr/local/bin", "/bin"):
        p = Path(d) / name
        if p.is_file():
            return str(p)
    return shutil.which(name)


def find_bwrap() -> str:
    path = _which("bwrap")
    if path is None:
        raise SandboxError(
            "bubblewrap (bwrap) is not installed: the namespaces runtime is unavailable",
            "apt-get install bubblewrap",
        )
    return path


def _listed_platforms(runsc: str) -> list[str]:
    r = subprocess.run([runsc, "flags"], capture_output=True, text=True, timeout=10, check=False)  # nosec B603
    out = r.stdout + r.stderr
    for line in out.splitlines():
        if "which platform to use" in line:
            text = line.split(":", 1)[1].split('(default "')[0].replace("(default)", "")
            words = [w.strip(" ,.()") for w in text.split()]
            return list(dict.fromkeys(w for w in words if w.isalpha()))
    return ["ptrace"]


def _probe_platform(runsc: str, platform: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="stockade-probe-") as d:
        bundle = Path(d)
        bundle.chmod(0o711)
        (bundle / "rootfs").mkdir()
        (bundle / "rootfs" / "usr").mkdir()
        for link, target in host_layout().symlinks:
            (bundle / "rootfs" / link.lstrip("/")).symlink_to(target)
        cfg = {
            "ociVersion": "1.0.2",
            "process": {
                "user": {"uid": 65532, "gid": 65532},
                "args": ["/usr/bin/true"],
                "env": ["PATH=/usr/bin"],
                "cwd": "/",
                "noNewPrivileges": True,
            },
            "root": {"path": "rootfs", "readonly": True},
            "mounts": [
                {"destination": "/usr", "type": "bind", "source": "/usr",
                 "options": ["rbind", "ro"]},
            ],
            "linux": {"namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts",
                                                           "mount")]},
        }  # fmt: skip
        (bundle / "config.json").write_text(json.dumps(cfg))
        cid = f"stockade-probe-{uuid.uuid4().hex[:12]}"
        root = str(bundle / "state")
        base = [runsc, f"--root={root}", f"--platform={platform}", "--network=none",
                "--ignore-cgroups"]  # fmt: skip
        try:
            r = subprocess.run(  # nosec B603
                [*base, "run", "--bundle", str(bundle), cid],
                capture_output=True,
                timeout=_PROBE_TIMEOUT_S,
                check=False,
                start_new_session=True,
            )
            ok = r.returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        subprocess.run(  # nosec B603
            [runsc, f"--root={root}", "delete", "--force", cid],
            capture_output=True,
            timeout=30,
            check=False,
        )
        return ok


@cache
def find_gvisor() -> GvisorRuntime:
    """runsc and the first platform that really runs a container here, or SandboxError."""
    runsc = _which("runsc")
    if runsc is None:
        raise SandboxError(
            "gVisor (runsc) is not installed: the gvisor runtime is unavailable",
            "apt-get install runsc (stockade never falls back to a weaker runtime on its own)",
        )
    version = subprocess.run(  # nosec B603
        [runsc, "--version"], capture_output=True, text=True, timeout=10, check=False
    ).stdout.splitlines()
    listed = _listed_platforms(runsc)
    order: list[str] = [p for p in ("systrap", "ptrace") if p in listed]
    order += [p for p in listed if p not in order and p != "kvm"]
    if "kvm" in listed and Path("/dev/kvm").exists():
        order.append("kvm")
    tried = []
    for platform in order:
        tried.append(platform)
        if _probe_platform(runsc, platform):
            return GvisorRuntime(runsc, platform, version[0] if version else "unknown")
    raise SandboxError(
        f"no gVisor platform runs a container on this host (tried {', '.join(tried) or 'none'})",
        "check runsc works here (runsc --platform=ptrace do true) and that ptrace is allowed",
    )


def landlock_abi() -> int:
    """The kernel's Landlock ABI version (0 when Landlock is unavailable)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    rc = int(libc.syscall(444, None, 0, 1))  # landlock_create_ruleset(VERSION)
    return max(rc, 0)
