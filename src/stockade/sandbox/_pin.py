"""Pinned host commands: a package tree is hashed when approved and verified at every start.

The digest covers every entry under the root, in sorted order: its relative path, its type, its
permission bits, and a regular file's content or a symlink's target. Special files (devices,
sockets, fifos) are refused. Nothing is downloaded; a changed tree refuses the start.
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from stockade.errors import SandboxError

__all__ = ["tree_digest", "verify_pin"]

_MAX_FILES = 200_000


def _entry(h: hashlib._Hash, root: Path, rel: str) -> None:
    path = root / rel if rel else root
    st = os.lstat(path)
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISLNK(st.st_mode):
        h.update(f"L\0{rel}\0{os.readlink(path)}\0".encode())
    elif stat.S_ISDIR(st.st_mode):
        h.update(f"D\0{rel}\0{mode:o}\0".encode())
    elif stat.S_ISREG(st.st_mode):
        h.update(f"F\0{rel}\0{mode:o}\0{st.st_size}\0".encode())
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
    else:
        raise SandboxError(
            f"pinned tree {root} holds a special file {rel!r} (got a device, socket or fifo, "
            "expected files, directories and symlinks)",
            "remove it from the package tree",
        )


def tree_digest(root: Path) -> str:
    """``sha256:<hex>`` of the tree at ``root`` (symlinks are hashed, never followed)."""
    if not root.is_dir() or root.is_symlink():
        raise SandboxError(f"pinned tree {root} is not a directory", "approve a package directory")
    h = hashlib.sha256(b"stockade-tree-v1\0")
    count = 0
    _entry(h, root, "")
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(dirpath).relative_to(root)
        for name in sorted([*dirnames, *filenames]):
            count += 1
            if count > _MAX_FILES:
                raise SandboxError(
                    f"pinned tree {root} has more than {_MAX_FILES} entries",
                    "pin a narrower package directory",
                )
            _entry(h, root, str(base / name) if str(base) != "." else name)
    return "sha256:" + h.hexdigest()


def verify_pin(root: Path, expected: str) -> None:
    """Refuse the start (SandboxError) unless the tree still has the approved digest."""
    got = tree_digest(root)
    if got != expected:
        raise SandboxError(
            f"pinned command tree {root} changed since it was approved (got {got}, expected "
            f"{expected})",
            "review the change, then re-approve the command to pin the new tree",
        )
