"""The root file system of a host command: read-only binds of the host's system directories.

Never the whole host root, never ``/root``, ``/home``, ``/work`` or stockade's own state: only
``/usr``, the ``/bin``-style links (or binds where they are real directories), a small ``/etc``
subset and generated ``passwd``/``group``/``hosts`` naming the sandbox user.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from pathlib import Path

from stockade.errors import SandboxError
from stockade.models import Bind, SandboxSpec

__all__ = ["ETC_FILES", "HostLayout", "check_bind", "etc_files", "host_layout"]

_TOP = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
#: The /etc entries a dynamically linked host program needs, and nothing else.
_ETC = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime")
ETC_FILES = ("passwd", "group", "hosts", "nsswitch.conf")
_TMP = "/tmp"  # nosec B108  # noqa: S108 (the sandbox's own tmpfs mount point)
_PROTECTED = ("/proc", "/sys", "/dev", "/boot", "/root", "/etc/shadow", "/etc/gshadow", "/run")


@dataclass(frozen=True)
class HostLayout:
    symlinks: tuple[tuple[str, str], ...]  # (path in sandbox, link target)
    ro_binds: tuple[str, ...]  # host path == sandbox path


def host_layout(host_root: Path = Path("/")) -> HostLayout:
    links: list[tuple[str, str]] = []
    binds: list[str] = ["/usr"]
    for name in _TOP:
        p = host_root / name
        if p.is_symlink():
            target = os.readlink(p)
            if target.startswith("/") or ".." in target.split("/"):
                raise SandboxError(
                    f"host /{name} links outside /usr (got {target!r})",
                    "stockade only mirrors relative /usr links",
                )
            links.append((f"/{name}", target))
        elif p.is_dir():
            binds.append(f"/{name}")
    binds += [f"/etc/{e}" for e in _ETC if (host_root / "etc" / e).exists()]
    return HostLayout(symlinks=tuple(links), ro_binds=tuple(binds))


def etc_files(uid: int, gid: int) -> dict[str, str]:
    return {
        "passwd": f"root:x:0:0:root:/nonexistent:/usr/sbin/nologin\n"
        f"sandbox:x:{uid}:{gid}:sandbox:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\nsandbox:x:{gid}:\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
    }


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def check_bind(bind: Bind, protected: tuple[str, ...] = ()) -> None:
    """Refuse a bind of the host root, of a system/secret path, or of a parent of one."""
    src = posixpath.normpath(bind.source)
    tgt = posixpath.normpath(bind.target)
    for p in (bind.source, bind.target):
        if ".." in p.split("/") or posixpath.normpath(p) != p or "\0" in p:
            raise SandboxError(
                f"bind path {p!r} is not normalised (got '..', '.', '//' or NUL)",
                "write the plain absolute path",
            )
    for p in (*_PROTECTED, *protected):
        if _within(src, p) or _within(p, src):
            raise SandboxError(
                f"bind source {src!r} exposes the protected host path {p!r}",
                "bind a narrower directory that holds only the workload's data",
            )
    for p in ("/proc", "/sys", "/dev", "/usr", "/etc", "/run/secrets", _TMP):
        if _within(p, tgt) or (_within(tgt, p) and p != _TMP):
            raise SandboxError(
                f"bind target {tgt!r} would cover the sandbox's own {p!r}",
                "choose a target such as /data or /work",
            )


def check_spec_binds(spec: SandboxSpec, protected: tuple[str, ...]) -> SandboxSpec:
    """Check every bind, on its path as given and on its symlink-free real path; the returned
    spec mounts the real paths (a link cannot redirect a bind to a protected path)."""
    real_protected = tuple(os.path.realpath(p) for p in protected)
    out = []
    for b in spec.binds:
        check_bind(b, protected)
        if b.size_mb is not None:
            raise SandboxError(
                f"bind {b.target!r} asks a {b.size_mb} MiB size cap, which the local runner "
                "cannot enforce on a host directory",
                "drop size_mb (only /tmp is capped), or use a backend with volume quotas",
            )
        if not Path(b.source).exists():
            raise SandboxError(f"bind source {b.source!r} does not exist", "create it or fix it")
        real = os.path.realpath(b.source)
        resolved = b.model_copy(update={"source": real})
        check_bind(resolved, (*protected, *real_protected))
        out.append(resolved)
    return spec.model_copy(update={"binds": tuple(out)})
