"""Backend-neutral per-run cgroup: one group per run, limits written and read back, then removed.

:func:`cgroup_root` detects the hierarchy (``_cgroup_detect``): cgroup v2 when the unified
hierarchy offers memory, pids and cpu, v1 otherwise, a refusal when neither does.
:func:`open_cgroup` gives the run's group for a detected root; the version is told by the root
itself (a v2 root has ``cgroup.controllers``), so a crash reaper can reopen it from the path
alone. A limit that does not stick refuses the launch. The group outlives the sandbox, so the
OOM counter can be read after the workload died.
"""

from __future__ import annotations

import contextlib
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from stockade.errors import SandboxError

__all__ = ["PARENT", "Cgroup", "CgroupUsage", "check_name", "open_cgroup"]

PARENT = "stockade"


@dataclass(frozen=True)
class CgroupUsage:
    cpu_ns: int
    memory_bytes: int
    oom_kills: int
    memory_failcnt: int
    pids: int


def check_name(name: str) -> str:
    if not name or "/" in name or name in {".", ".."}:
        raise SandboxError(f"bad cgroup name {name!r}", "use a run id")
    return name


def write_checked(f: Path, value: str, expected: str | None = None) -> None:
    """Write one cgroup file and read it back; a value that does not stick refuses."""
    try:
        f.write_text(value)
        got = f.read_text().strip()
    except OSError as e:
        raise SandboxError(
            f"cannot set cgroup limit {f.name}={value}: {e.strerror}",
            "check that the cgroup controller is writable (and delegated) to stockade",
        ) from None
    want = value if expected is None else expected
    if got != want:
        raise SandboxError(
            f"cgroup limit {f.name} did not apply (got {got}, expected {want})",
            "check the cgroup hierarchy; stockade refuses to launch without the limit",
        )


def read_int(f: Path) -> int:
    try:
        return int(f.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def read_keyed(f: Path, key: str) -> int:
    """One value of a flat keyed file (``memory.events``, ``cpu.stat``); 0 when absent."""
    with contextlib.suppress(OSError):
        for line in f.read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                with contextlib.suppress(ValueError):
                    return int(v.strip())
    return 0


class Cgroup(ABC):
    """The cgroup of one run, relative path ``/stockade/<name>`` (``rel``) in its hierarchy."""

    version: int

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = check_name(name)
        self.rel = f"/{PARENT}/{self.name}"

    @abstractmethod
    def create(self, *, memory_bytes: int, host_pids: int, cpu_quota_us: int) -> None:
        """Create the group and apply the limits (each read back), or refuse."""

    @abstractmethod
    def usage(self) -> CgroupUsage: ...

    @abstractmethod
    def procs_files(self) -> tuple[Path, ...]:
        """Every ``cgroup.procs`` a process writes its pid to, to join the run's group."""

    @abstractmethod
    def dirs(self) -> tuple[Path, ...]:
        """The group's directories (one per v1 controller, one in v2)."""

    def parents(self) -> tuple[Path, ...]:
        """Every ``stockade/`` parent directory of this hierarchy (v1: one per mounted hierarchy,
        including those the runtime fills on its own, such as blkio, devices or freezer)."""
        parent = self.root / PARENT
        return (parent,) if parent.is_dir() else ()

    def all_dirs(self) -> tuple[Path, ...]:
        """Every directory of the run's group that exists now, in any hierarchy (to remove)."""
        ours = list(self.dirs())
        seen = {d.resolve() for d in ours}
        for parent in self.parents():
            d = parent / self.name
            if d.is_dir() and d.resolve() not in seen:
                seen.add(d.resolve())
                ours.append(d)
        return tuple(ours)

    def pids(self) -> list[int]:
        out: list[int] = []
        with contextlib.suppress(OSError, ValueError):
            out = [int(x) for x in self.procs_files()[-1].read_text().split()]
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
        """Remove the cgroup (children first) from every hierarchy it is in, ours and those the
        runtime joined it to; a dying process may hold it (EBUSY): retry."""
        self.kill_all(bound_s)
        end = time.monotonic() + bound_s
        for top in self.all_dirs():
            subs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
            for d in (*subs, top):
                while True:
                    try:
                        d.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        # A process may join late (a launch racing a crash): kill again, retry.
                        self.kill_all(0.5)
                        if time.monotonic() >= end:
                            raise SandboxError(
                                f"cgroup {d} could not be removed (still busy)",
                                "it is cleaned at the next start; check for stuck processes",
                            ) from None
                        time.sleep(0.01)


def open_cgroup(root: Path, name: str) -> Cgroup:
    """The run's group under a detected root: v2 if the root is a unified hierarchy, else v1."""
    from ._cgroup_v1 import CgroupV1
    from ._cgroup_v2 import CgroupV2

    if (root / "cgroup.controllers").is_file():
        return CgroupV2(root, name)
    return CgroupV1(root, name)
