"""A content hash of a package tree (e.g. an npm ``node_modules`` install) that pins bind to."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ._errors import ConfigError

__all__ = ["package_tree_hash"]

_MAX_FILES = 200_000


def package_tree_hash(root: Path) -> str:
    """``tree:sha256:<hex>`` over every file's relative path, mode bit x, and content (sorted).

    Symlinks are hashed by their target text, never followed. Special files are refused.
    """
    if not root.is_dir():
        raise ConfigError(
            f"package tree {root} is not a directory", "point package_tree at the install"
        )
    entries: list[tuple[str, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames) + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if p.is_symlink():
                entries.append((rel, b"L" + os.readlink(p).encode()))
            elif p.is_file():
                h = hashlib.sha256()
                with p.open("rb") as f:
                    for chunk in iter(lambda: f.read(1 << 20), b""):
                        h.update(chunk)
                x = b"x" if os.access(p, os.X_OK) else b"-"
                entries.append((rel, b"F" + x + h.digest()))
            else:
                raise ConfigError(
                    f"package tree has a special file: {rel}", "remove it from the tree"
                )
            if len(entries) > _MAX_FILES:
                raise ConfigError(
                    f"package tree {root} has over {_MAX_FILES} files", "pin a smaller tree"
                )
    outer = hashlib.sha256()
    for rel, digest in sorted(entries):
        outer.update(rel.encode() + b"\0" + digest + b"\n")
    return "tree:sha256:" + outer.hexdigest()
