"""Live cgroup v2 tests: run inside the v2-only VM that ``scripts/cgroupv2-vm`` boots.

They are marked ``cgroupv2vm`` (registered here) and skip loudly anywhere the unified hierarchy
does not carry memory, pids and cpu, or without root.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.sandbox._cgroup_detect import decide, probe

V2 = Path("/sys/fs/cgroup")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "cgroupv2vm: needs a cgroup v2-only host (scripts/cgroupv2-vm boots one)"
    )


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    try:
        choice = decide(probe())
    except SandboxError as e:
        return e.what
    if choice.version != 2:
        return f"this host's limits go through cgroup v{choice.version} (run scripts/cgroupv2-vm)"
    return None


@pytest.fixture(autouse=True)
def _v2_host() -> Iterator[None]:
    why = _why_not()
    if why is not None:
        pytest.skip(f"NO CGROUP V2 HOST: {why}")
    yield
    leftovers = [p.name for p in (V2 / "stockade").glob("*") if p.is_dir()]
    assert not leftovers, f"run cgroups left behind: {leftovers}"
