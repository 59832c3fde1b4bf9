"""Removing stale, empty run cgroups a crashed runner or gateway left behind.

A runner that dies between creating a run's cgroup and removing it leaves ``stockade/<run id>``
directories; its live-state file (``_reap``) is gone with its temporary home, or was never
written. At the next launch, the groups that are certainly stale are removed: a name of our own
form (a run id: 32 lowercase hex digits), older than :data:`MIN_AGE_S` (a launch in progress
elsewhere has its group populated within seconds, and gives up after its 30 s join bound), and
empty: the kernel refuses ``rmdir`` of a group that still holds a process or a child group, so a
live run is never touched. Nothing else under ``stockade/`` and nothing outside it is removed.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

from ._cgroup import Cgroup

__all__ = ["MIN_AGE_S", "is_stale", "sweep_stale"]

#: How old (modification time) an empty run group must be before it counts as stale.
MIN_AGE_S = 120.0
_RUN_ID = re.compile(r"[0-9a-f]{32}")


def is_stale(name: str, mtime: float, now: float, *, min_age_s: float = MIN_AGE_S) -> bool:
    """Whether a group named ``name``, last modified at ``mtime``, is ours and old enough."""
    return _RUN_ID.fullmatch(name) is not None and now - mtime >= min_age_s


def sweep_stale(cgroup: Cgroup, now: float, *, keep: str = "") -> list[Path]:
    """Remove the stale empty run groups beside ``cgroup`` (never ``keep``); the removed paths."""
    removed: list[Path] = []
    for parent in cgroup.parents():
        try:
            children = sorted(p for p in parent.iterdir() if p.is_dir())
        except OSError:
            continue
        for d in children:
            if d.name == keep:
                continue
            try:
                mtime = d.stat().st_mtime
            except OSError:
                continue
            if not is_stale(d.name, mtime, now):
                continue
            with contextlib.suppress(OSError):  # busy (a process or a child group): not stale
                d.rmdir()
                removed.append(d)
    return removed
