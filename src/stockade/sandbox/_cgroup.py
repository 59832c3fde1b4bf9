"""cgroup v1 adapter: one cgroup per run under ``stockade/`` in memory, cpu, cpuacct, pids.

The runner creates the cgroup itself, writes the limits, reads them back (a limit that does not
stick refuses the launch), and removes the cgroup at the end. It outlives the sandbox, so the
OOM counter can be read after the workload died.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stockade.errors import SandboxError

__all__ = ["CONTROLLERS", "Cgroup", "CgroupUsage", "cgroup_v1_root"]

CONTROLLERS = ("memory", "cpu", "cpuacct", "pids")
_PARENT = "stockade"


def cgroup_v1_root(base: Path = Path("/sys/fs/cgroup")) -> Path:
    """The v1 hierarchy root, or :class:`SandboxError` naming the controller that is missing."""
    for c in CONTROLLERS:
        if not (base / c / "cgroup.procs").is_file():
            raise SandboxError(
                f"cgroup v1 controller {c!r} is not mounted at {base / c} (the memory, CPU and "
                "pids limits cannot be applied)",
                f"mount it (mount -t cgroup -o {c} cgroup {base / c}) or run on a host with "
                "cgroup v1 controllers; stockade refuses to launch without them",
            )
    return base


@dataclass(frozen=True)
class CgroupUsage:
    cpu_ns: int
    memory_bytes: int
    oom_kills: int
    memory_failcnt: int
    pids: int


class Cgroup:
    """The cgroup of one run (relative path ``stockade/<name>`` in every controller)."""

    def __init__(self, root: Path, name: str) -> None:
        if not name or "/" in name or name in {".", ".."}:
            raise SandboxError(f"bad cgroup name {name!r}", "use a run id")
        self.root = root
        self.name = name
        self.rel = f"/{_PARENT}/{name}"

    def path(self, controller: str) -> Path:
        return self.root / controller / _PARENT / self.name

    def create(self, *, memory_bytes: int, host_pids: int, cpu_quota_us: int) -> None:
        for c in CONTROLLERS:
            try:
                self.path(c).mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise SandboxError(
                    f"cannot create cgroup {self.path(c)}: {e.strerror}",
                    "run stockade as root (or with a delegated cgroup)",
                ) from None
        self._set("memory", "memory.limit_in_bytes", memory_bytes)
        # No swap on top of the limit when the kernel accounts it.
        if (self.path("memory") / "memory.memsw.limit_in_bytes").exists():
            self._set("memory", "memory.memsw.limit_in_bytes", memory_bytes)
        self._set("pids", "pids.max", host_pids)
        self._set("cpu", "cpu.cfs_period_us", 100_000)
        self._set("cpu", "cpu.cfs_quota_us", cpu_quota_us)

    def _set(self, controller: str, key: str, value: int) -> None:
        f = self.path(controller) / key
        try:
            f.write_text(str(value))
            got = f.read_text().strip()
        except OSError as e:
            raise SandboxError(
                f"cannot set {controller} limit {key}={value}: {e.strerror}",
                "check that the cgroup controller is writable by stockade",
            ) from None
        if got != str(value):
            raise SandboxError(
                f"cgroup limit {key} did not apply (got {got}, expected {value})",
                "check the cgroup hierarchy; stockade refuses to launch without the limit",
            )

    def procs_files(self) -> tuple[Path, ...]:
        return tuple(self.path(c) / "cgroup.procs" for c in CONTROLLERS)

    def _read_int(self, controller: str, key: str) -> int:
        try:
            return int((self.path(controller) / key).read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return 0

    def usage(self) -> CgroupUsage:
        oom = 0
        with contextlib.suppress(OSError):
            for line in (self.path("memory") / "memory.oom_control").read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == "oom_kill":
                    oom = int(v)
        return CgroupUsage(
            cpu_ns=self._read_int("cpuacct", "cpuacct.usage"),
            memory_bytes=self._read_int("memory", "memory.max_usage_in_bytes"),
            oom_kills=oom,
            memory_failcnt=self._read_int("memory", "memory.failcnt"),
            pids=self._read_int("pids", "pids.current"),
        )

    def pids(self) -> list[int]:
        out: list[int] = []
        with contextlib.suppress(OSError):
            out = [int(x) for x in (self.path("pids") / "cgroup.procs").read_text().split()]
        return out

    def kill_all(self, bound_s: float = 10.0) -> None:
        """SIGKILL every process in the cgroup (the whole tree) until it is empty (bounded)."""
        end = time.monotonic() + bound_s
        while time.monotonic() < end:
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            time.sleep(0.01)

    def wait_joined(self, pid: int, exited: Callable[[], bool], bound_s: float = 30.0) -> bool:
        """Whether ``pid`` joined the cgroup within the bound, or already ended.

        A process that ended may have left the cgroup before we looked; the launch chain only
        execs the workload after joining (``&&``), so an ended process ran nothing unenforced.
        """
        end = time.monotonic() + bound_s
        while time.monotonic() < end:
            if pid in self.pids() or exited():
                return True
            time.sleep(0.002)
        return False

    def remove(self, bound_s: float = 10.0) -> None:
        """Remove the cgroup; a dying process may hold it a moment (EBUSY): retry, bounded."""
        self.kill_all(bound_s)
        end = time.monotonic() + bound_s
        for c in CONTROLLERS:
            while True:
                try:
                    self.path(c).rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    # A process may join late (a launch racing a crash): kill again, retry.
                    self.kill_all(0.5)
                    if time.monotonic() >= end:
                        raise SandboxError(
                            f"cgroup {self.path(c)} could not be removed (still busy)",
                            "it is cleaned at the next start; check for stuck processes",
                        ) from None
                    time.sleep(0.01)
