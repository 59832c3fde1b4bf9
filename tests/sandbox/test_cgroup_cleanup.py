"""Every run removes its cgroup from every hierarchy, whatever way it ends (or is refused), and a
stale empty run group a crashed runner left is removed at the next launch: only ours, only empty,
only old."""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.models import EndReason, Runtime, SandboxSpec
from stockade.sandbox import cgroup_root, launch
from stockade.sandbox._cgroup_sweep import MIN_AGE_S, is_stale, sweep_stale
from stockade.sandbox._cgroup_v1 import CgroupV1

from .test_runner_lifecycle import _skip_unless

PY = "/usr/bin/python3"
RUN = "0123456789abcdef0123456789abcdef"  # pragma: allowlist secret
BOMB = "x = []\nwhile True: x.append(bytearray(8 << 20))"


# -- pure: what counts as stale -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "age", "stale"),
    [
        (RUN, MIN_AGE_S + 1, True),
        (RUN, MIN_AGE_S - 1, False),  # a launch elsewhere may be about to join it
        (RUN.upper(), MIN_AGE_S * 10, False),  # not our form
        (RUN[:-1], MIN_AGE_S * 10, False),
        (RUN + "0", MIN_AGE_S * 10, False),
        ("stockade-probe-0123456789ab", MIN_AGE_S * 10, False),
        ("system.slice", MIN_AGE_S * 10, False),
        ("", MIN_AGE_S * 10, False),
    ],
)
def test_only_old_groups_named_like_a_run_id_are_stale(name: str, age: float, stale: bool) -> None:
    assert is_stale(name, 1000.0, 1000.0 + age) is stale


# -- on a fake v1 tree: which directories are ours, and which the sweep removes --------------


def _tree(root: Path) -> None:
    for hierarchy in ("memory", "cpu", "cpuacct", "pids", "blkio", "freezer", "systemd"):
        (root / hierarchy / "stockade").mkdir(parents=True)


def test_a_v1_group_is_found_in_every_hierarchy_the_runtime_joined_it_to(tmp_path: Path) -> None:
    _tree(tmp_path)
    (tmp_path / "blkio" / "stockade" / RUN).mkdir()
    (tmp_path / "systemd" / "stockade" / RUN).mkdir()
    cg = CgroupV1(tmp_path, RUN)
    for d in cg.dirs():
        d.mkdir()
    found = {d.relative_to(tmp_path).parts[0] for d in cg.all_dirs()}
    assert found == {"memory", "cpu", "cpuacct", "pids", "blkio", "systemd"}
    cg.remove(bound_s=1)
    assert not list(tmp_path.glob(f"*/stockade/{RUN}"))
    assert (tmp_path / "freezer" / "stockade").is_dir()  # the parents stay


def test_the_sweep_removes_only_old_empty_groups_of_our_naming(tmp_path: Path) -> None:
    _tree(tmp_path)
    now = time.time()
    old = now - MIN_AGE_S - 60
    stale, young, busy, foreign = (uuid.uuid4().hex for _ in range(4))
    for hierarchy in ("memory", "blkio"):
        parent = tmp_path / hierarchy / "stockade"
        for name in (stale, young, busy, "not-a-run"):
            (parent / name).mkdir()
        (parent / busy / "cgroup.procs").write_text("4242\n")  # rmdir refuses: not empty
        for name in (stale, busy, "not-a-run"):
            os.utime(parent / name, (old, old))
    (tmp_path / "memory" / foreign).mkdir()  # outside stockade/: never looked at
    os.utime(tmp_path / "memory" / foreign, (old, old))
    removed = sweep_stale(CgroupV1(tmp_path, RUN), now, keep=RUN)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in removed) == [
        f"blkio/stockade/{stale}",
        f"memory/stockade/{stale}",
    ]
    for hierarchy in ("memory", "blkio"):
        left = {p.name for p in (tmp_path / hierarchy / "stockade").iterdir()}
        assert left == {young, busy, "not-a-run"}
    assert (tmp_path / "memory" / foreign).is_dir()


# -- real gVisor: no run leaves a cgroup directory behind ---------------------------------------


@pytest.fixture
def gvisor_state(tmp_path: Path) -> Path:
    _skip_unless(Runtime.GVISOR)
    state = tmp_path / "state"
    state.mkdir()
    return state


def _left(run_id: str) -> list[Path]:
    """Every directory of ``run_id``'s group still present, in any hierarchy (v1 or v2)."""
    root = cgroup_root()
    return [*root.glob(f"stockade/{run_id}"), *root.glob(f"*/stockade/{run_id}")]


def _run(state: Path, script: str, **fields: object) -> tuple[str, EndReason]:
    spec = SandboxSpec(argv=(PY, "-c", script), runtime=Runtime.GVISOR, timeout_s=30, **fields)  # type: ignore[arg-type]
    sb = launch(spec, state=state)
    for pipe in (sb.stdout, sb.stderr):
        assert pipe is not None
        pipe.read()
        pipe.close()
    outcome = sb.wait(timeout=60)
    assert outcome.cleanup_error == ""
    return sb.run_id, outcome.end_reason


@pytest.mark.gvisor
@pytest.mark.guarantee("sandbox-cgroup-removed")
@pytest.mark.guarantee("sandbox-end-reason-oom-over-cpu")
@pytest.mark.parametrize(
    ("script", "fields", "reason"),
    [
        ("print('ok')", {}, EndReason.EXITED),
        ("import os; os.kill(os.getpid(), 9)", {}, EndReason.EXITED),  # the workload crashes
        (BOMB, {"memory_mb": 64}, EndReason.MEMORY_LIMIT),
        (BOMB, {"memory_mb": 64, "cpu_seconds": 1}, EndReason.MEMORY_LIMIT),  # OOM beats CPU
    ],
    ids=["exits", "crashes", "oom", "oom-tight-cpu"],
)
def test_a_run_leaves_no_cgroup_directory_in_any_hierarchy(
    gvisor_state: Path, script: str, fields: dict[str, object], reason: EndReason
) -> None:
    run_id, got = _run(gvisor_state, script, **fields)
    assert got == reason
    assert _left(run_id) == []


@pytest.mark.gvisor
@pytest.mark.guarantee("sandbox-cgroup-removed")
def test_a_run_refused_after_its_cgroup_was_made_leaves_none_behind(gvisor_state: Path) -> None:
    before = {p.name for p in cgroup_root().glob("*/stockade/*")}
    run_id = uuid.uuid4().hex
    spec = SandboxSpec(argv=(PY, "-c", "print(1)"), runtime=Runtime.GVISOR, secrets=("token",))
    with pytest.raises(SandboxError, match="no secret store"):
        launch(spec, state=gvisor_state, run_id=run_id)  # refused while preparing the bundle
    assert _left(run_id) == []
    assert run_id not in before


@pytest.fixture
def planted() -> Iterator[tuple[str, list[Path]]]:
    """A stale run group in two v1 hierarchies, and a foreign-named one, all old and empty."""
    root = cgroup_root()
    name = uuid.uuid4().hex
    parents = [p for p in (root / "memory" / "stockade", root / "pids" / "stockade") if p.is_dir()]
    if not parents:
        pytest.skip("CGROUP V1 stockade/ PARENTS ABSENT: the planted-group test is for v1 hosts")
    made: list[Path] = []
    old = time.time() - MIN_AGE_S - 60
    for parent in parents:
        for n in (name, f"keep-{name[:8]}"):
            (parent / n).mkdir()
            os.utime(parent / n, (old, old))
            made.append(parent / n)
    yield name, made
    for d in made:
        with contextlib.suppress(OSError):
            d.rmdir()


@pytest.mark.gvisor
@pytest.mark.guarantee("sandbox-cgroup-stale-swept")
def test_the_next_launch_removes_a_stale_empty_run_group_and_nothing_else(
    gvisor_state: Path, planted: tuple[str, list[Path]]
) -> None:
    name, made = planted
    _run(gvisor_state, "print('ok')")
    assert [d for d in made if d.name == name and d.exists()] == []
    assert all(d.is_dir() for d in made if d.name != name)
