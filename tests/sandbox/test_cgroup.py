"""cgroup detection and the v1/v2 backends on fake cgroupfs trees (the files the kernel writes)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.errors import SandboxError
from stockade.sandbox._cgroup import check_name, open_cgroup, read_keyed
from stockade.sandbox._cgroup_detect import HostCgroups, cgroup_root, decide, probe
from stockade.sandbox._cgroup_v1 import V1_CONTROLLERS, CgroupV1
from stockade.sandbox._cgroup_v2 import CgroupV2, enable_controllers

ALL_V2 = "cpuset cpu io memory hugetlb pids rdma misc"


def fake_v2(root: Path, *, offers: str = ALL_V2, enabled: str = "cpu memory pids") -> Path:
    """A unified hierarchy whose root (and stockade/) already enable memory, pids and cpu."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text(offers + "\n")
    (root / "cgroup.subtree_control").write_text(enabled + "\n")
    (root / "cgroup.procs").write_text("1\n")
    parent = root / "stockade"
    parent.mkdir(exist_ok=True)
    (parent / "cgroup.controllers").write_text(enabled + "\n")
    (parent / "cgroup.subtree_control").write_text(enabled + "\n")
    return root


def fake_v2_leaf(root: Path, name: str) -> Path:
    leaf = root / "stockade" / name
    leaf.mkdir(parents=True)
    files = {
        "cgroup.procs": "", "memory.max": "max", "memory.swap.max": "max", "pids.max": "max",
        "cpu.max": "max 100000", "memory.current": "0", "pids.current": "0",
        "cpu.stat": "usage_usec 0\nuser_usec 0\nsystem_usec 0\n",
        "memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n",
    }  # fmt: skip
    for k, v in files.items():
        (leaf / k).write_text(v + "\n")
    return leaf


def fake_v1(base: Path, controllers: tuple[str, ...] = V1_CONTROLLERS) -> Path:
    for c in controllers:
        (base / c).mkdir(parents=True, exist_ok=True)
        (base / c / "cgroup.procs").write_text("1\n")
    return base


def host(**kw: object) -> HostCgroups:
    facts: dict[str, object] = {
        "base": Path("/sys/fs/cgroup"), "v2_root": None, "v2_controllers": frozenset(),
        "v2_writable": True, "v1_controllers": frozenset(), "v1_writable": True,
    }  # fmt: skip
    facts.update(kw)
    return HostCgroups(**facts)  # type: ignore[arg-type]


@pytest.mark.guarantee("sandbox-cgroup-detect")
def test_a_unified_hierarchy_with_memory_pids_and_cpu_is_chosen(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    assert decide(probe(tmp_path)).version == 2
    assert cgroup_root(tmp_path) == tmp_path


@pytest.mark.guarantee("sandbox-cgroup-detect")
def test_a_hybrid_host_whose_unified_tree_has_only_hugetlb_uses_v1(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    choice = decide(probe(tmp_path))
    assert (choice.version, choice.root) == (1, tmp_path)
    assert isinstance(open_cgroup(choice.root, "r1"), CgroupV1)


@pytest.mark.guarantee("sandbox-cgroup-detect")
def test_a_hybrid_host_whose_unified_tree_has_the_controllers_uses_it(tmp_path: Path) -> None:
    fake_v1(tmp_path, ("cpuset",))
    fake_v2(tmp_path / "unified")
    choice = decide(probe(tmp_path))
    assert (choice.version, choice.root) == (2, tmp_path / "unified")
    assert isinstance(open_cgroup(choice.root, "r1"), CgroupV2)


@pytest.mark.guarantee("sandbox-cgroup-detect", "sandbox-refuse-missing-control")
def test_neither_hierarchy_providing_the_controllers_refuses_naming_both(tmp_path: Path) -> None:
    fake_v1(tmp_path, ("memory", "cpu", "cpuacct"))
    (tmp_path / "unified").mkdir()
    (tmp_path / "unified" / "cgroup.controllers").write_text("hugetlb\n")
    with pytest.raises(SandboxError) as e:
        cgroup_root(tmp_path)
    assert "lacks memory, pids, cpu" in e.value.what
    assert "'pids' is not mounted" in e.value.what
    assert "refuses" in e.value.fix


@pytest.mark.guarantee("sandbox-cgroup-detect", "sandbox-refuse-missing-control")
def test_a_unified_tree_missing_one_controller_and_no_v1_refuses(tmp_path: Path) -> None:
    fake_v2(tmp_path, offers="cpu memory io")
    with pytest.raises(SandboxError, match="lacks pids"):
        cgroup_root(tmp_path)


@pytest.mark.guarantee("sandbox-cgroup-detect", "sandbox-refuse-missing-control")
def test_an_empty_host_refuses(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no cgroup v2 hierarchy is mounted"):
        cgroup_root(tmp_path)


@pytest.mark.guarantee("sandbox-cgroup-detect", "sandbox-refuse-missing-control")
@pytest.mark.parametrize("version", [1, 2])
def test_a_read_only_cgroupfs_refuses(version: int) -> None:
    v2 = frozenset({"memory", "pids", "cpu"})
    facts = (
        host(v2_root=Path("/sys/fs/cgroup"), v2_controllers=v2, v2_writable=False)
        if version == 2
        else host(v1_controllers=frozenset(V1_CONTROLLERS), v1_writable=False)
    )
    with pytest.raises(SandboxError, match="read-only") as e:
        decide(facts)
    assert "refuses" in e.value.fix


def test_a_read_only_v2_tree_does_not_fall_back_to_a_partial_v1() -> None:
    v2 = frozenset({"memory", "pids", "cpu"})
    facts = host(v2_root=Path("/x"), v2_controllers=v2, v2_writable=False,
                 v1_controllers=frozenset({"cpuset"}))  # fmt: skip
    with pytest.raises(SandboxError, match="read-only"):
        decide(facts)


@pytest.mark.guarantee("sandbox-cgroup-v2-limits")
def test_v2_writes_memory_no_swap_pids_and_cpu_limits_and_reads_them_back(tmp_path: Path) -> None:
    leaf = fake_v2_leaf(fake_v2(tmp_path), "r1")
    cg = open_cgroup(tmp_path, "r1")
    cg.create(memory_bytes=64 << 20, host_pids=128, cpu_quota_us=100_000)
    assert (leaf / "memory.max").read_text() == str(64 << 20)
    assert (leaf / "memory.swap.max").read_text() == "0"
    assert (leaf / "pids.max").read_text() == "128"
    assert (leaf / "cpu.max").read_text() == "100000 100000"
    assert cg.procs_files() == (leaf / "cgroup.procs",)
    assert cg.rel == "/stockade/r1"


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-refuse-missing-control")
def test_v2_refuses_when_the_root_does_not_offer_a_controller(tmp_path: Path) -> None:
    fake_v2(tmp_path, offers="cpu memory", enabled="")
    with pytest.raises(SandboxError, match="does not offer the pids controller") as e:
        open_cgroup(tmp_path, "r1").create(memory_bytes=1 << 20, host_pids=8, cpu_quota_us=1)
    assert "delegate" in e.value.fix


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-refuse-missing-control")
def test_v2_refuses_when_enabling_the_controllers_does_not_stick(tmp_path: Path) -> None:
    # A real subtree_control lists "memory", never "+memory": the write did not take effect.
    fake_v2(tmp_path, enabled="")
    with pytest.raises(SandboxError, match=r"memory, pids, cpu controller\(s\) did not get"):
        enable_controllers(tmp_path)


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-refuse-missing-control")
def test_v2_refuses_when_the_subtree_control_cannot_be_read(tmp_path: Path) -> None:
    fake_v2(tmp_path, enabled="cpu")
    (tmp_path / "cgroup.subtree_control").unlink()
    (tmp_path / "cgroup.subtree_control").mkdir()  # reading it fails (EISDIR)
    with pytest.raises(SandboxError, match="cannot read"):
        enable_controllers(tmp_path)


@pytest.mark.guarantee("sandbox-cgroup-v2-limits", "sandbox-refuse-missing-control")
def test_v2_refuses_a_limit_that_cannot_be_written(tmp_path: Path) -> None:
    leaf = fake_v2_leaf(fake_v2(tmp_path), "r1")
    (leaf / "pids.max").unlink()
    (leaf / "pids.max").mkdir()
    with pytest.raises(SandboxError, match=r"cannot set cgroup limit pids.max=8"):
        open_cgroup(tmp_path, "r1").create(memory_bytes=1 << 20, host_pids=8, cpu_quota_us=1)


@pytest.mark.guarantee("sandbox-cgroup-v2-limits")
def test_v2_usage_reads_cpu_stat_memory_events_and_the_peak(tmp_path: Path) -> None:
    leaf = fake_v2_leaf(fake_v2(tmp_path), "r1")
    (leaf / "cpu.stat").write_text("usage_usec 1500000\nuser_usec 1400000\nsystem_usec 100000\n")
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n")
    (leaf / "memory.current").write_text("4096\n")
    (leaf / "pids.current").write_text("3\n")
    u = open_cgroup(tmp_path, "r1").usage()
    assert (u.cpu_ns, u.oom_kills, u.memory_failcnt, u.pids) == (1_500_000_000, 1, 7, 3)
    assert u.memory_bytes == 4096
    (leaf / "memory.peak").write_text("8192\n")
    assert open_cgroup(tmp_path, "r1").usage().memory_bytes == 8192


def test_v2_usage_of_a_vanished_group_is_zero_not_a_crash(tmp_path: Path) -> None:
    fake_v2(tmp_path)
    u = open_cgroup(tmp_path, "gone").usage()
    assert (u.cpu_ns, u.oom_kills, u.pids) == (0, 0, 0)
    assert open_cgroup(tmp_path, "gone").pids() == []


def test_v1_writes_its_limits_in_each_controller_and_reads_oom_control(tmp_path: Path) -> None:
    fake_v1(tmp_path)
    cg = open_cgroup(tmp_path, "r1")
    assert isinstance(cg, CgroupV1)
    cg.create(memory_bytes=32 << 20, host_pids=64, cpu_quota_us=50_000)
    assert (cg.path("memory") / "memory.limit_in_bytes").read_text() == str(32 << 20)
    assert (cg.path("cpu") / "cpu.cfs_quota_us").read_text() == "50000"
    assert (cg.path("pids") / "pids.max").read_text() == "64"
    (cg.path("memory") / "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 2\n")
    (cg.path("cpuacct") / "cpuacct.usage").write_text("123\n")
    u = cg.usage()
    assert (u.oom_kills, u.cpu_ns) == (2, 123)
    assert len(cg.procs_files()) == 4


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "../x"])
def test_a_cgroup_name_that_is_not_one_path_component_is_refused(bad: str) -> None:
    with pytest.raises(SandboxError, match="bad cgroup name"):
        check_name(bad)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.integers(0, 2**62)))
def test_a_keyed_file_yields_each_value_and_zero_for_absent_keys(values: dict[str, int]) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "memory.events"
        f.write_text("".join(f"{k} {v}\n" for k, v in values.items()))
        for k, v in values.items():
            assert read_keyed(f, k) == v
        assert read_keyed(f, "absent-key") == 0
