"""cgroup v2 (unified): the run's group ``stockade/<name>`` under the detected v2 root.

The controllers are enabled (delegated) top-down: ``+memory +pids +cpu`` in the root's and in
``stockade/``'s ``cgroup.subtree_control``, each read back; a controller the parent does not
offer, or whose enabling does not stick, refuses the launch. ``stockade/`` holds no process (v2's
no-internal-process rule); the sandbox joins the leaf through its one ``cgroup.procs``.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from stockade.errors import SandboxError

from ._cgroup import PARENT, Cgroup, CgroupUsage, read_int, read_keyed, write_checked

__all__ = ["V2_CONTROLLERS", "CgroupV2", "enable_controllers", "parse_controllers"]

V2_CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def parse_controllers(text: str) -> frozenset[str]:
    """The names in a ``cgroup.controllers`` / ``cgroup.subtree_control`` line."""
    return frozenset(text.split())


def _read_controllers(f: Path) -> frozenset[str]:
    try:
        return parse_controllers(f.read_text())
    except OSError as e:
        raise SandboxError(
            f"cannot read {f}: {e.strerror}", "check that cgroup2 is mounted and readable"
        ) from None


def enable_controllers(group: Path, wanted: tuple[str, ...] = V2_CONTROLLERS) -> None:
    """Enable ``wanted`` for the children of ``group``, or refuse naming what is missing."""
    offered = _read_controllers(group / "cgroup.controllers")
    missing = [c for c in wanted if c not in offered]
    if missing:
        raise SandboxError(
            f"cgroup v2 group {group} does not offer the {', '.join(missing)} controller(s) "
            f"(offers: {' '.join(sorted(offered)) or 'none'})",
            "enable them in the parent's cgroup.subtree_control (or delegate them to stockade's "
            "service); stockade refuses to launch without memory, pids and cpu limits",
        )
    control = group / "cgroup.subtree_control"
    enabled = _read_controllers(control)
    todo = [c for c in wanted if c not in enabled]
    if not todo:
        return
    try:
        control.write_text(" ".join(f"+{c}" for c in todo))
    except OSError as e:
        raise SandboxError(
            f"cannot enable the {', '.join(todo)} controller(s) in {control}: {e.strerror}",
            "delegate the controllers to stockade (a writable cgroup whose processes live in a "
            "leaf, e.g. a systemd unit with Delegate=yes) or run it as root on the host",
        ) from None
    still = [c for c in todo if c not in _read_controllers(control)]
    if still:
        raise SandboxError(
            f"the {', '.join(still)} controller(s) did not get enabled in {control} "
            "(not delegated)",
            "delegate the controllers to stockade; it refuses to launch without the limits",
        )


class CgroupV2(Cgroup):
    version = 2

    @property
    def dir(self) -> Path:
        return self.root / PARENT / self.name

    def dirs(self) -> tuple[Path, ...]:
        return (self.dir,)

    def create(self, *, memory_bytes: int, host_pids: int, cpu_quota_us: int) -> None:
        parent = self.root / PARENT
        enable_controllers(self.root)
        for d in (parent, self.dir):
            try:
                d.mkdir(exist_ok=True)
            except OSError as e:
                raise SandboxError(
                    f"cannot create cgroup {d}: {e.strerror}",
                    "run stockade as root (or with a delegated cgroup)",
                ) from None
            if d == parent:
                enable_controllers(parent)
        write_checked(self.dir / "memory.max", str(memory_bytes))
        # No swap on top of the limit when the kernel accounts it.
        if (self.dir / "memory.swap.max").exists():
            write_checked(self.dir / "memory.swap.max", "0")
        write_checked(self.dir / "pids.max", str(host_pids))
        write_checked(self.dir / "cpu.max", f"{cpu_quota_us} {CPU_PERIOD_US}")

    def procs_files(self) -> tuple[Path, ...]:
        return (self.dir / "cgroup.procs",)

    def kill_all(self, bound_s: float = 10.0) -> None:
        # cgroup.kill (Linux 5.14+) kills the whole subtree atomically; the loop then confirms.
        kill = self.dir / "cgroup.kill"
        if self.pids() and kill.exists():
            with contextlib.suppress(OSError):
                kill.write_text("1")
        super().kill_all(bound_s)

    def usage(self) -> CgroupUsage:
        peak = self.dir / "memory.peak"  # Linux 5.19+; the current usage before it
        events = self.dir / "memory.events"
        return CgroupUsage(
            cpu_ns=read_keyed(self.dir / "cpu.stat", "usage_usec") * 1000,
            memory_bytes=read_int(peak if peak.exists() else self.dir / "memory.current"),
            oom_kills=read_keyed(events, "oom_kill"),
            memory_failcnt=read_keyed(events, "max"),
            pids=read_int(self.dir / "pids.current"),
        )
