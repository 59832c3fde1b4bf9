"""Recorded policy versions (table ``policy_versions``): the hash preflight compares against."""

from __future__ import annotations

from datetime import datetime

from stockade.store import RunStore

__all__ = ["PolicyVersion", "latest_policy_version", "record_policy_version"]

from stockade.models import Frozen


class PolicyVersion(Frozen):
    id: int
    hash: str
    applied_at: str
    applied_by: str


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


def latest_policy_version(store: RunStore) -> PolicyVersion | None:
    row = store.connection.execute(
        "SELECT id, hash, applied_at, applied_by FROM policy_versions ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    return PolicyVersion(id=row[0], hash=row[1], applied_at=row[2], applied_by=row[3])
