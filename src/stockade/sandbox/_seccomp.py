"""The default seccomp profile: allow by default, deny the kernel's most dangerous surface.

The same deny list is compiled to BPF with libseccomp (pyseccomp) for bubblewrap, and rendered
into the OCI ``linux.seccomp`` section for runsc (loaded inside gVisor with ``--oci-seccomp``).
"""

from __future__ import annotations

import errno
import os
import tempfile
from typing import Any

from stockade.errors import SandboxError

__all__ = ["DENIED_SYSCALLS", "compile_bpf", "oci_seccomp"]

#: Denied with EPERM: mounting, namespace games, tracing, kernel keyring, eBPF, module and kernel
#: loading, raw I/O, clock and host changes, userfaultfd, perf, personality changes.
DENIED_SYSCALLS: tuple[str, ...] = (
    "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr",
    "unshare", "setns", "clone3",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd",
    "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "fanotify_init",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "reboot", "swapon", "swapoff", "syslog", "acct", "quotactl", "quotactl_fd",
    "iopl", "ioperm", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "sethostname", "setdomainname", "personality", "lookup_dcookie", "name_to_handle_at",
    "open_by_handle_at", "nfsservctl", "vhangup", "uselib", "_sysctl", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "mbind", "migrate_pages", "move_pages",
    "set_mempolicy",
)  # fmt: skip


def compile_bpf() -> int:
    """A file descriptor (at offset 0) holding the compiled BPF program, for ``bwrap --seccomp``.

    ``clone3`` is answered with ENOSYS so libc falls back to ``clone``, whose namespace flags
    bubblewrap's own user-namespace lock already denies (``--disable-userns``).
    """
    try:
        import pyseccomp as sc  # type: ignore[import-untyped]
    except (ImportError, OSError) as e:
        raise SandboxError(
            f"the seccomp compiler is unavailable ({type(e).__name__}: {e})",
            "install libseccomp2 (apt-get install libseccomp2) and pyseccomp (pip)",
        ) from None
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        for name in DENIED_SYSCALLS:
            action = sc.ERRNO(errno.ENOSYS) if name == "clone3" else sc.ERRNO(errno.EPERM)
            try:
                f.add_rule(action, name)
            except ValueError:
                # A syscall this libseccomp does not know cannot exist on this arch build.
                continue
        fd, path = tempfile.mkstemp(prefix="stockade-seccomp-")
        os.unlink(path)
        with os.fdopen(os.dup(fd), "wb") as out:
            f.export_bpf(out)
        os.lseek(fd, 0, os.SEEK_SET)
    except (OSError, RuntimeError) as e:
        raise SandboxError(
            f"the seccomp filter could not be compiled: {e}",
            "check libseccomp2 is installed and matches this kernel's architecture",
        ) from None
    if os.fstat(fd).st_size == 0:
        os.close(fd)
        raise SandboxError("the compiled seccomp filter is empty", "reinstall libseccomp2")
    return fd


def oci_seccomp() -> dict[str, Any]:
    """The OCI rendering. ``clone3`` is left to gVisor (it answers ENOSYS itself, and an OCI
    errno rule on it breaks glibc's thread creation inside this gVisor build)."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
        "syscalls": [
            {
                "names": [n for n in DENIED_SYSCALLS if n != "clone3"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": errno.EPERM,
            },
        ],
    }
