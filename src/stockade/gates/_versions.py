"""Policy versions (table ``policy_versions``): record, list, apply and roll back by hash.

Applying installs a validated policy document at the active path (atomically, checked by hash
after writing beside it) and records it; rolling back re-installs the previous distinct version.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from stockade.errors import PolicyError
from stockade.models import Frozen
from stockade.policy import load_policy
from stockade.store import RunStore

__all__ = [
    "PolicyVersion",
    "install_policy",
    "latest_policy_version",
    "policy_history",
    "previous_policy_version",
    "record_policy_version",
]


class PolicyVersion(Frozen):
    id: int
    hash: str
    applied_at: str
    applied_by: str


def _row(row: tuple[object, ...]) -> PolicyVersion:
    return PolicyVersion(
        id=int(str(row[0])), hash=str(row[1]), applied_at=str(row[2]), applied_by=str(row[3])
    )


def record_policy_version(
    store: RunStore, policy_hash: str, *, by: str, document: str, at: datetime
) -> PolicyVersion:
    cur = store.connection.execute(
        "INSERT INTO policy_versions (hash, applied_at, applied_by, document) VALUES (?, ?, ?, ?)",
        (policy_hash, at.isoformat(), by, document),
    )
    return PolicyVersion(
        id=int(cur.lastrowid or 0), hash=policy_hash, applied_at=at.isoformat(), applied_by=by
    )


def policy_history(store: RunStore, limit: int = 50) -> list[PolicyVersion]:
    rows = store.connection.execute(
        "SELECT id, hash, applied_at, applied_by FROM policy_versions ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    return [_row(tuple(r)) for r in rows]


def latest_policy_version(store: RunStore) -> PolicyVersion | None:
    history = policy_history(store, 1)
    return history[0] if history else None


def previous_policy_version(store: RunStore) -> tuple[PolicyVersion, str]:
    """The newest version whose hash differs from the latest one, with its document."""
    latest = latest_policy_version(store)
    if latest is None:
        raise PolicyError("no policy version is recorded", "apply one first")
    row = store.connection.execute(
        "SELECT id, hash, applied_at, applied_by, document FROM policy_versions "
        "WHERE hash != ? ORDER BY id DESC LIMIT 1",
        (latest.hash,),
    ).fetchone()
    if row is None:
        raise PolicyError(
            f"no earlier policy version than {latest.hash}", "there is nothing to roll back to"
        )
    return _row(tuple(row)[:4]), str(row[4])


def install_policy(document: str, active: Path) -> str:
    """Write ``document`` to ``active`` atomically after it loads beside it; return its hash."""
    tmp = active.with_name(f".{active.name}.new")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(document)
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise PolicyError(f"cannot write {tmp}: {e.strerror}", "check the directory") from e
    try:
        new_hash = load_policy(tmp).effective_hash
    except PolicyError:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, active)
    return new_hash
