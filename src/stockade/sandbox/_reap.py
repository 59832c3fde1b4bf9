"""Live-run state files and the reaping of leftovers from a runner that crashed.

Each live run writes ``<state>/live/<run_id>.json`` naming its backend, container id, cgroup and
the runner's pid with its start time. At the next start, a file whose runner is gone is a
leftover: its sandbox is killed and deleted, its cgroup and directories removed, and its run
marked ``lost``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess  # nosec B404
from dataclasses import asdict, dataclass
from pathlib import Path

from stockade.models import EndReason, RunStatus

from ._cgroup import open_cgroup
from ._netns import NetPair, delete_pair
from ._protocols import RunStoreLike

__all__ = ["LiveRun", "process_start_time", "reap_leftovers"]


def process_start_time(pid: int) -> str:
    """Field 22 of /proc/<pid>/stat (start time in ticks), '' when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class LiveRun:
    run_id: str
    backend: str
    container_id: str
    runsc_root: str
    cgroup_root: str
    run_dir: str
    secrets_dir: str
    runner_pid: int
    runner_start: str
    egress_dir: str = ""
    #: An image run's egress namespaces (``_netns.NetPair``), space-separated; deleted last.
    netns: str = ""

    def write(self, state: Path) -> Path:
        live = state / "live"
        live.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = live / f"{self.run_id}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)
        return path

    @staticmethod
    def forget(state: Path, run_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (state / "live" / f"{run_id}.json").unlink()


def _runner_alive(run: LiveRun) -> bool:
    return process_start_time(run.runner_pid) == run.runner_start != ""


def destroy(run: LiveRun, runsc: str | None, *, kill: bool = True) -> None:
    """Kill and remove everything of one run; each step tolerates what is already gone.

    ``kill=False`` after a clean exit: ``delete --force`` alone stops what may remain.
    """
    if run.backend == "gvisor" and runsc and kill:
        subprocess.run(  # nosec B603
            [runsc, f"--root={run.runsc_root}", "kill", "--all", run.container_id, "KILL"],
            capture_output=True,
            timeout=30,
            check=False,
        )
    if run.backend == "gvisor" and runsc:
        subprocess.run(  # nosec B603
            [runsc, f"--root={run.runsc_root}", "delete", "--force", run.container_id],
            capture_output=True,
            timeout=30,
            check=False,
        )
    cg = open_cgroup(Path(run.cgroup_root), run.run_id)
    cg.kill_all()
    cg.remove()
    for d in (run.run_dir, run.secrets_dir, run.egress_dir):
        if d:
            shutil.rmtree(d, ignore_errors=True)
    if run.netns:
        workload, _, proxy = run.netns.partition(" ")
        delete_pair(NetPair(workload=workload, proxy=proxy))


def reap_leftovers(state: Path, runsc: str | None, store: RunStoreLike | None) -> list[str]:
    """Clean every leftover of a dead runner; return the run ids marked lost."""
    lost: list[str] = []
    live = state / "live"
    if not live.is_dir():
        return lost
    for f in sorted(live.glob("*.json")):
        try:
            run = LiveRun(**json.loads(f.read_text()))
        except (OSError, ValueError, TypeError):
            f.unlink(missing_ok=True)
            continue
        if run.runner_pid == os.getpid() or _runner_alive(run):
            continue
        destroy(run, runsc)
        f.unlink(missing_ok=True)
        lost.append(run.run_id)
        if store is not None:
            from stockade.errors import StoreError

            with contextlib.suppress(StoreError):
                store.update(run.run_id, status=RunStatus.LOST, end_reason=EndReason.LOST)
    return lost
