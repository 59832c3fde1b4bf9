"""cgroup v1: the run's group ``stockade/<name>`` in each of memory, cpu, cpuacct and pids."""

from __future__ import annotations

import contextlib
from pathlib import Path

from stockade.errors import SandboxError

from ._cgroup import PARENT, Cgroup, CgroupUsage, read_int, write_checked

__all__ = ["V1_CONTROLLERS", "CgroupV1"]

V1_CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")


class CgroupV1(Cgroup):
    version = 1

    def path(self, controller: str) -> Path:
        return self.root / controller / PARENT / self.name

    def dirs(self) -> tuple[Path, ...]:
        return tuple(self.path(c) for c in V1_CONTROLLERS)

    def parents(self) -> tuple[Path, ...]:
        out: dict[Path, Path] = {}
        with contextlib.suppress(OSError):
            for hierarchy in sorted(self.root.iterdir()):
                parent = hierarchy / PARENT
                if parent.is_dir():
                    out.setdefault(parent.resolve(), parent)
        return tuple(out.values())

    def create(self, *, memory_bytes: int, host_pids: int, cpu_quota_us: int) -> None:
        for d in self.dirs():
            try:
                d.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise SandboxError(
                    f"cannot create cgroup {d}: {e.strerror}",
                    "run stockade as root (or with a delegated cgroup)",
                ) from None
        mem = self.path("memory")
        write_checked(mem / "memory.limit_in_bytes", str(memory_bytes))
        # No swap on top of the limit when the kernel accounts it.
        if (mem / "memory.memsw.limit_in_bytes").exists():
            write_checked(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
        write_checked(self.path("pids") / "pids.max", str(host_pids))
        write_checked(self.path("cpu") / "cpu.cfs_period_us", "100000")
        write_checked(self.path("cpu") / "cpu.cfs_quota_us", str(cpu_quota_us))

    def procs_files(self) -> tuple[Path, ...]:
        # pids last: ``pids()`` reads the last one.
        return tuple(self.path(c) / "cgroup.procs" for c in V1_CONTROLLERS)

    def usage(self) -> CgroupUsage:
        oom = 0
        with contextlib.suppress(OSError, ValueError):
            for line in (self.path("memory") / "memory.oom_control").read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    oom = int(v)
        mem = self.path("memory")
        return CgroupUsage(
            cpu_ns=read_int(self.path("cpuacct") / "cpuacct.usage"),
            memory_bytes=read_int(mem / "memory.max_usage_in_bytes"),
            oom_kills=oom,
            memory_failcnt=read_int(mem / "memory.failcnt"),
            pids=read_int(self.path("pids") / "pids.current"),
        )
