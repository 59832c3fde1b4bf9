"""Render a :class:`SandboxSpec` as a bubblewrap command line (pure)."""

from __future__ import annotations

from collections.abc import Mapping

from stockade.models import SandboxSpec

from ._layout import HostLayout
from ._oci import SANDBOX_TMP, SECRETS_DIR

__all__ = ["bwrap_argv"]


def bwrap_argv(
    spec: SandboxSpec,
    layout: HostLayout,
    *,
    bwrap: str,
    seccomp_fd: int,
    etc_fds: Mapping[str, int],
    secret_fds: Mapping[str, int],
) -> list[str]:
    """bwrap argv: every namespace, no capabilities, read-only root, explicit environment.

    ``etc_fds`` and ``secret_fds`` are descriptors whose content bwrap copies into files inside
    the sandbox (generated /etc files; secrets as 0400 files on a tmpfs, never environment).
    """
    a = [bwrap, "--unshare-all", "--unshare-user", "--disable-userns"]
    a += ["--uid", str(spec.uid), "--gid", str(spec.gid), "--hostname", "sandbox"]
    a += ["--die-with-parent", "--new-session", "--cap-drop", "ALL", "--clearenv"]
    env = dict(spec.env)
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    for k, v in env.items():
        a += ["--setenv", k, v]
    for path in layout.ro_binds:
        a += ["--ro-bind", path, path]
    for link, target in layout.symlinks:
        a += ["--symlink", target, link]
    a += ["--proc", "/proc", "--dev", "/dev"]
    a += ["--size", str(spec.tmp_size_mb * 1024 * 1024), "--tmpfs", SANDBOX_TMP]
    for name, fd in etc_fds.items():
        a += ["--perms", "0444", "--ro-bind-data", str(fd), f"/etc/{name}"]
    for b in spec.binds:
        a += ["--bind" if b.mode == "rw" else "--ro-bind", b.source, b.target]
    if secret_fds:
        a += ["--perms", "0500", "--size", str(1024 * 1024), "--tmpfs", SECRETS_DIR]
        for name, fd in secret_fds.items():
            a += ["--perms", "0400", "--file", str(fd), f"{SECRETS_DIR}/{name}"]
        a += ["--remount-ro", SECRETS_DIR]
    # bwrap's /dev is a tmpfs the sandbox user owns: read-only, or /dev/shm is an uncapped scratch.
    a += ["--remount-ro", "/dev", "--remount-ro", "/"]
    a += ["--seccomp", str(seccomp_fd), "--chdir", spec.cwd, "--"]
    return [*a, *spec.argv]
