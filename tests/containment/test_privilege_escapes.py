"""Privilege escapes: no setuid, no capabilities, no /proc/sys or /sys writes, no keyring."""

from __future__ import annotations

import pytest

from .conftest import Runner

SYSCALLS = """
import ctypes, errno, os, socket
libc = ctypes.CDLL(None, use_errno=True)
def attempt(name, fn):
    try:
        rc = fn()
    except OSError as e:
        print("blocked", name, e.errno); return
    if rc == -1:
        print("blocked", name, ctypes.get_errno())
    else:
        print("ESCAPED", name, rc)
"""


@pytest.mark.guarantee("sandbox-no-setuid")
def test_setuid_binaries_do_not_raise_privileges(run: Runner) -> None:
    payload = """
import os, subprocess
r = subprocess.run(["/usr/bin/mount", "-t", "tmpfs", "none", "/tmp"], capture_output=True)
print("mount rc", r.returncode)
r = subprocess.run(["/usr/bin/python3", "-c", "import os; print(os.geteuid())"],
                   capture_output=True, text=True)
print("euid", r.stdout.strip())
"""
    r = run(payload)
    assert "mount rc 0" not in r.stdout
    assert "euid 65532" in r.stdout


@pytest.mark.guarantee("sandbox-no-capabilities")
def test_capability_use_fails_mount_chown_raw_socket_ptrace(run: Runner) -> None:
    payload = (
        SYSCALLS
        + """
open("/tmp/f", "w").close()
attempt("mount", lambda: libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
attempt("chown", lambda: os.chown("/tmp/f", 0, 0))
attempt("raw", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) and 0)
child = os.fork()
if child == 0:
    import time; time.sleep(5); os._exit(0)
attempt("ptrace", lambda: libc.ptrace(16, child, None, None))
os.kill(child, 9); os.waitpid(child, 0)
attempt("unshare-user", lambda: libc.unshare(0x10000000))
caps = [l for l in open("/proc/self/status") if l.startswith("CapEff")]
print(caps[0].strip())
"""
    )
    r = run(payload)
    assert "ESCAPED" not in r.stdout, r.stdout
    for name in ("mount", "chown", "raw", "ptrace", "unshare-user"):
        assert f"blocked {name}" in r.stdout, r.stdout + r.stderr
    assert "CapEff:\t0000000000000000" in r.stdout


@pytest.mark.guarantee("sandbox-no-proc-sys-writes")
def test_proc_sys_and_sys_cannot_be_written(run: Runner) -> None:
    payload = """
for p in ["/proc/sys/kernel/hostname", "/proc/sys/vm/drop_caches", "/proc/sysrq-trigger",
          "/sys/kernel/uevent_helper", "/sys/fs/cgroup/cgroup.procs"]:
    try:
        with open(p, "w") as f:
            f.write("1")
        print("WROTE", p)
    except OSError as e:
        print("blocked", p, e.errno)
"""
    r = run(payload)
    assert "WROTE" not in r.stdout
    assert r.stdout.count("blocked") == 5


@pytest.mark.guarantee("sandbox-no-keyring")
def test_the_kernel_keyring_is_unavailable(run: Runner) -> None:
    payload = (
        SYSCALLS
        + """
attempt("add_key", lambda: libc.syscall(248, b"user", b"stockade", b"v", 1, -3))
attempt("keyctl", lambda: libc.syscall(250, 0, -3, 0))
"""
    )
    r = run(payload)
    assert "ESCAPED" not in r.stdout
    assert "blocked add_key" in r.stdout
    assert "blocked keyctl" in r.stdout
