"""Resolve fs_allowlist entries on the host: relative to the policy's directory, no escapes."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from stockade.models import Bind, Frozen

from ._normalise import Finding
from ._schema import FsEntry

__all__ = ["MOUNT_FLAGS", "Mount", "Resolution", "resolve"]

MOUNT_FLAGS = ("nosuid", "nodev")


class Mount(Frozen):
    """One granted host path: ``source`` is the absolute, symlink-free path actually mounted."""

    path: str
    source: str
    mode: str
    flags: tuple[str, ...] = MOUNT_FLAGS
    exists: bool = True

    def bind(self, target: str) -> Bind:
        return Bind(source=self.source, target=target, mode="rw" if self.mode == "rw" else "ro")


@dataclass
class Resolution:
    mounts: dict[str, tuple[Mount, ...]] = field(default_factory=dict)
    secret_store: str | None = None
    errors: list[Finding] = field(default_factory=list)
    warnings: list[Finding] = field(default_factory=list)


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _entries(tree: dict[str, Any]) -> Iterator[tuple[int, str, int, FsEntry]]:
    """(server index, server name, entry index, entry) for each well-formed raw entry."""
    servers = tree.get("servers")
    if not isinstance(servers, list):
        return
    for i, server in enumerate(servers):
        if not isinstance(server, dict) or not isinstance(server.get("fs_allowlist"), list):
            continue
        name = server.get("name")
        for j, raw in enumerate(server["fs_allowlist"]):
            try:
                entry = FsEntry.model_validate_json(json.dumps(raw))
            except ValidationError:
                continue  # the schema pass reports it
            yield i, name if isinstance(name, str) else f"#{i}", j, entry


def resolve(tree: dict[str, Any], policy_file: str) -> Resolution:
    """Resolve every fs_allowlist entry of the (normalised) tree against the host."""
    out = Resolution()
    file_real = os.path.realpath(policy_file)
    # Relative paths are relative to the directory the policy file really lives in (after
    # resolving symlinks to the file or its directories), and must stay inside it.
    base_real = os.path.dirname(file_real)
    base_abs = base_real
    store = tree.get("secret_store")
    if isinstance(store, str) and store:
        out.secret_store = os.path.realpath(os.path.join(base_abs, store))
    found: dict[str, list[Mount]] = {}
    for i, name, j, entry in _entries(tree):
        mounts = found.setdefault(name, [])
        where = ("servers", i, "fs_allowlist", j)
        lexical = os.path.normpath(os.path.join(base_abs, entry.path))
        if not _under(lexical, base_abs):
            what = (
                f"fs_allowlist path {entry.path!r} is absolute and outside the policy directory"
                if entry.path.startswith("/")
                else f"fs_allowlist path {entry.path!r} escapes the policy directory via '..'"
            )
            out.errors.append(
                Finding(where, what, f"grant a path inside {base_abs} (relative to the policy)")
            )
            continue
        real = os.path.realpath(lexical)
        if not _under(real, base_real):
            out.errors.append(
                Finding(
                    where,
                    f"fs_allowlist path {entry.path!r} resolves through a symlink to "
                    f"{real}, outside the policy directory",
                    "grant the real directory inside the policy directory, not a symlink",
                )
            )
            continue
        if entry.mode == "rw" and _under(file_real, real):
            out.errors.append(
                Finding(
                    where,
                    f"fs_allowlist path {entry.path!r} is read-write and contains the policy "
                    "file itself",
                    "grant a subdirectory, or make it mode: ro",
                )
            )
            continue
        if out.secret_store and (_under(out.secret_store, real) or _under(real, out.secret_store)):
            out.errors.append(
                Finding(
                    where,
                    f"fs_allowlist path {entry.path!r} would expose the secret store",
                    "grant a directory that does not contain the secret store",
                )
            )
            continue
        exists = os.path.isdir(real) or os.path.isfile(real)
        if not exists:
            out.warnings.append(
                Finding(
                    where,
                    f"server {name!r}: fs_allowlist path {entry.path!r} does not exist yet",
                    "create it; a run is refused until it exists",
                )
            )
        mounts.append(Mount(path=entry.path, source=real, mode=entry.mode, exists=exists))
    out.mounts = {k: tuple(v) for k, v in found.items()}
    return out
