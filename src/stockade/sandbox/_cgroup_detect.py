"""Which cgroup hierarchy carries the run limits: a pure decision over probed host facts.

cgroup v2 when the unified hierarchy offers memory, pids and cpu; v1 when the memory, cpu,
cpuacct and pids hierarchies are mounted; otherwise (or read-only) a refusal naming what is
missing. A controller lives in one hierarchy only, so the two never both qualify.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from stockade.errors import SandboxError

from ._cgroup_v1 import V1_CONTROLLERS
from ._cgroup_v2 import V2_CONTROLLERS, parse_controllers

__all__ = ["CgroupChoice", "HostCgroups", "cgroup_root", "cgroup_v1_root", "decide", "probe"]

BASE = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class HostCgroups:
    """What the host offers (probed once; ``decide`` only reads this)."""

    base: Path
    v2_root: Path | None
    v2_controllers: frozenset[str]
    v2_writable: bool
    v1_controllers: frozenset[str]
    v1_writable: bool


@dataclass(frozen=True)
class CgroupChoice:
    version: int
    root: Path


def decide(host: HostCgroups) -> CgroupChoice:
    if host.v2_root is not None and set(V2_CONTROLLERS) <= host.v2_controllers:
        if not host.v2_writable:
            raise SandboxError(
                f"the cgroup v2 hierarchy at {host.v2_root} is read-only (the memory, CPU and "
                "pids limits cannot be applied)",
                "mount cgroup2 read-write for stockade (a container needs a writable, delegated "
                "cgroup); stockade refuses to launch without the limits",
            )
        return CgroupChoice(2, host.v2_root)
    v1_missing = [c for c in V1_CONTROLLERS if c not in host.v1_controllers]
    if not v1_missing:
        if not host.v1_writable:
            raise SandboxError(
                f"the cgroup v1 hierarchies under {host.base} are read-only (the memory, CPU "
                "and pids limits cannot be applied)",
                "mount them read-write for stockade; stockade refuses to launch without them",
            )
        return CgroupChoice(1, host.base)
    if host.v2_root is None:
        v2 = "no cgroup v2 hierarchy is mounted"
    else:
        lacks = [c for c in V2_CONTROLLERS if c not in host.v2_controllers]
        v2 = f"cgroup v2 at {host.v2_root} lacks {', '.join(lacks)}"
    raise SandboxError(
        f"no cgroup hierarchy provides memory+pids+cpu: {v2}; cgroup v1 controller "
        f"{v1_missing[0]!r} is not mounted at {host.base / v1_missing[0]} (the memory, CPU and "
        "pids limits cannot be applied)",
        "boot with the unified hierarchy (systemd.unified_cgroup_hierarchy=1) or mount the v1 "
        f"controllers (mount -t cgroup -o {v1_missing[0]} cgroup {host.base / v1_missing[0]}); "
        "stockade refuses to launch without them",
    )


def _writable(path: Path) -> bool:
    try:
        return not os.statvfs(path).f_flag & os.ST_RDONLY
    except OSError:
        return False


def probe(base: Path = BASE) -> HostCgroups:
    v2_root: Path | None = None
    v2: frozenset[str] = frozenset()
    for cand in (base, base / "unified"):
        f = cand / "cgroup.controllers"
        if f.is_file():
            v2_root = cand
            try:
                v2 = parse_controllers(f.read_text())
            except OSError:
                v2 = frozenset()
            break
    v1 = frozenset(c for c in V1_CONTROLLERS if (base / c / "cgroup.procs").is_file())
    return HostCgroups(
        base=base,
        v2_root=v2_root,
        v2_controllers=v2,
        v2_writable=v2_root is not None and _writable(v2_root),
        v1_controllers=v1,
        v1_writable=bool(v1) and all(_writable(base / c) for c in v1),
    )


def cgroup_root(base: Path = BASE) -> Path:
    """The root the run's cgroup goes under (v2 or v1, see :func:`decide`), or a refusal."""
    return decide(probe(base)).root


def cgroup_v1_root(base: Path = BASE) -> Path:
    """The v1 root only, or :class:`SandboxError` naming the controller that is missing."""
    host = probe(base)
    return decide(
        HostCgroups(base, None, frozenset(), False, host.v1_controllers, host.v1_writable)
    ).root
