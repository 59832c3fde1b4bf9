"""The pure renderers: OCI config.json for runsc and the bubblewrap command line."""

from __future__ import annotations

import pytest

from stockade.errors import SandboxError
from stockade.models import Bind, SandboxSpec
from stockade.sandbox import DENIED_SYSCALLS, host_layout
from stockade.sandbox._bwrap import bwrap_argv
from stockade.sandbox._layout import HostLayout, check_bind
from stockade.sandbox._oci import oci_config
from stockade.sandbox._seccomp import oci_seccomp

LAYOUT = HostLayout(symlinks=(("/bin", "usr/bin"),), ro_binds=("/usr", "/etc/ld.so.cache"))
SPEC = SandboxSpec(
    argv=("/usr/bin/python3", "-c", "pass"),
    binds=(Bind(source="/srv/in", target="/in"), Bind(source="/srv/out", target="/out", mode="rw")),
    env=(("A", "1"),),
    pids=32,
)


def _config() -> dict[str, object]:
    return oci_config(
        SPEC, LAYOUT, cgroup_path="/stockade/r1", memory_bytes=1 << 28, host_pids=256,
        secrets_source="/dev/shm/stockade/r1",
    )  # fmt: skip


@pytest.mark.guarantee("sandbox-readonly-root")
def test_the_oci_config_has_a_read_only_root_and_read_only_system_binds() -> None:
    c = _config()
    assert c["root"] == {"path": "rootfs", "readonly": True}
    mounts = {m["destination"]: m for m in c["mounts"]}  # type: ignore[attr-defined]
    assert "ro" in mounts["/usr"]["options"]
    assert "ro" in mounts["/in"]["options"]
    assert "rw" in mounts["/out"]["options"]
    assert "ro" in mounts["/run/secrets"]["options"]
    assert all(m["source"] != "/" for m in mounts.values())
    assert "size=64m" in mounts["/tmp"]["options"]


@pytest.mark.guarantee("sandbox-no-capabilities")
def test_the_oci_process_is_unprivileged_with_no_capabilities_and_limits() -> None:
    p = _config()["process"]
    assert p["user"]["uid"] == 65532  # type: ignore[index]
    assert p["noNewPrivileges"] is True  # type: ignore[index]
    assert all(v == [] for v in p["capabilities"].values())  # type: ignore[index]
    rl = {r["type"]: r["hard"] for r in p["rlimits"]}  # type: ignore[index]
    assert rl["RLIMIT_NPROC"] == 32
    assert rl["RLIMIT_NOFILE"] <= 256
    assert p["env"] == ["PATH=/usr/local/bin:/usr/bin:/bin", "A=1"]  # type: ignore[index]
    linux = _config()["linux"]
    assert linux["cgroupsPath"] == "/stockade/r1"  # type: ignore[index]
    assert {"type": "network"} in linux["namespaces"]  # type: ignore[index]


@pytest.mark.guarantee("sandbox-no-keyring")
def test_the_seccomp_profile_denies_the_dangerous_syscalls() -> None:
    for name in ("mount", "ptrace", "keyctl", "add_key", "bpf", "kexec_load", "setns", "unshare",
                 "perf_event_open", "userfaultfd", "init_module"):  # fmt: skip
        assert name in DENIED_SYSCALLS
    denied = {n for rule in oci_seccomp()["syscalls"] for n in rule["names"]}
    assert denied == set(DENIED_SYSCALLS) - {"clone3"}


@pytest.mark.guarantee("sandbox-no-host-loopback")
def test_the_bwrap_command_unshares_everything_and_drops_all_capabilities() -> None:
    a = bwrap_argv(SPEC, LAYOUT, bwrap="bwrap", seccomp_fd=7, etc_fds={}, secret_fds={"k": 9})
    assert "--unshare-all" in a
    assert "--share-net" not in a
    for flag in ("--die-with-parent", "--new-session", "--clearenv", "--disable-userns"):
        assert flag in a
    assert a[a.index("--cap-drop") + 1] == "ALL"
    assert a[a.index("--seccomp") + 1] == "7"
    assert a[a.index("--remount-ro") + 1] == "/run/secrets"
    assert a[a.index("--seccomp") - 4 : a.index("--seccomp")] == [
        "--remount-ro", "/dev", "--remount-ro", "/"
    ]  # fmt: skip
    assert a[-3:] == list(SPEC.argv)
    assert a[a.index("--file") - 2 : a.index("--file") + 3] == [
        "--perms",
        "0400",
        "--file",
        "9",
        "/run/secrets/k",
    ]


@pytest.mark.guarantee("sandbox-no-host-files")
@pytest.mark.parametrize(
    "source",
    ["/", "/etc", "/etc/shadow", "/root", "/root/.ssh", "/proc", "/sys/fs", "/dev", "/run"],
)
def test_binds_exposing_protected_host_paths_are_refused(source: str) -> None:
    with pytest.raises(SandboxError, match="protected"):
        check_bind(Bind(source=source, target="/data"))


@pytest.mark.guarantee("sandbox-no-host-files")
def test_binds_of_stockades_own_state_or_over_sandbox_system_dirs_are_refused() -> None:
    with pytest.raises(SandboxError, match="protected"):
        check_bind(Bind(source="/var/lib/stockade/keys", target="/k"), ("/var/lib/stockade",))
    for target in ("/", "/usr", "/usr/bin", "/proc", "/etc/passwd", "/run/secrets"):
        with pytest.raises(SandboxError, match="cover"):
            check_bind(Bind(source="/srv/x", target=target))


def test_the_host_layout_never_binds_the_whole_root_or_home_directories() -> None:
    layout = host_layout()
    assert "/usr" in layout.ro_binds
    for path in layout.ro_binds:
        assert path != "/"
        assert not path.startswith(("/root", "/home", "/work"))
        assert path == "/usr" or path.startswith("/etc/") or path.count("/") == 1


@pytest.mark.guarantee("sandbox-writable-only-tmp")
def test_landlock_rules_grant_writes_only_under_tmp_and_rw_binds() -> None:
    from stockade.sandbox._landlock import ALL, READ, landlock_rules

    rules = dict(landlock_rules(SPEC, LAYOUT))
    assert rules["/tmp"] == ALL
    assert rules["/out"] == ALL
    assert rules["/in"] == READ
    assert rules["/usr"] == READ
    writable = {p for p, access in rules.items() if access == ALL}
    assert writable == {"/tmp", "/out"}
    assert "/" not in rules
