"""Audit retention: rotate the live log into a sealed, verifiable archive; prune old archives.

Rotation follows the audit log's own locking protocol (an exclusive ``flock`` on ``<log>.lock``,
the lock every appender takes): seal the log with a signed checkpoint, then, under the lock,
check that nothing was appended since, and rename it into the archive directory. Appenders follow
the path on their next append and start a fresh chain there; the first event stockade writes into
it (``audit_rotated``) names the archive and its signed head, linking the two chains.

Each archive ``audit-<UTC time>-<head prefix>.jsonl`` (0400) has a ``.seal.json`` beside it with
the file's SHA-256, the counts and the signed head checkpoint: ``verify_file(archive,
public_key=..., expect_head=seal["head"])`` checks it offline.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

from stockade.audit import (
    AuditLog,
    load_keys,
    verify_log,
)
from stockade.models import Clock, Frozen

from ._gates import GateError

__all__ = ["ArchiveSeal", "prune_archives", "rotate_audit_log"]

ROTATED_TYPE = "audit_rotated"


class ArchiveSeal(Frozen):
    file: str
    sha256: str
    events: int
    checkpoints: int
    head: dict[str, object]
    archived_at: str


def _lock(log: Path, timeout_s: float) -> int:
    fd = os.open(f"{log}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise GateError(
                    f"the audit log {log} stayed locked for {timeout_s} s", "retry later"
                ) from None
            time.sleep(0.01)


def rotate_audit_log(
    log: Path, key_dir: Path, archive_dir: Path, clock: Clock, *, lock_timeout_s: float = 10.0
) -> ArchiveSeal:
    keys = load_keys(key_dir)
    public_key = keys.signing_key.public_key()
    archive_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    for _attempt in range(3):
        with AuditLog.open_existing(log, key_dir, clock=clock) as live:
            live.checkpoint()
        fd = _lock(log, lock_timeout_s)
        try:
            content = log.read_bytes()
            report = verify_log(content, public_key=public_key, hmac_key=keys.hmac_key)
            if not report.ok or report.problem is not None:
                raise GateError(
                    f"the audit log fails verification at {report.problem}: not archiving it",
                    "investigate the log before rotating it",
                )
            if report.unsealed or report.head is None:
                continue  # an append slipped in between sealing and locking: seal again
            now = clock.now()
            name = f"audit-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{report.head.head[-12:]}.jsonl"
            target = archive_dir / name
            if target.exists():
                raise GateError(f"archive {target} already exists", "retry")
            os.rename(log, target)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
        os.chmod(target, 0o400)
        seal = ArchiveSeal(
            file=name,
            sha256=hashlib.sha256(content).hexdigest(),
            events=report.events,
            checkpoints=report.checkpoints,
            head=report.head.model_dump(),
            archived_at=now.isoformat(),
        )
        seal_path = archive_dir / f"{name}.seal.json"
        seal_path.write_text(json.dumps(seal.model_dump(), indent=2, sort_keys=True) + "\n")
        os.chmod(seal_path, 0o400)
        with AuditLog.open(log, keys=keys, clock=clock) as fresh:
            fresh.append(
                ROTATED_TYPE,
                {"archive": name, "sha256": seal.sha256, "head": report.head.id},
            )
        return seal
    raise GateError(
        f"the audit log {log} kept changing while it was being sealed", "retry when quieter"
    )


def prune_archives(archive_dir: Path, retention: timedelta, clock: Clock) -> list[str]:
    """Delete archives (and their seals) archived longer ago than ``retention``; return names."""
    if retention <= timedelta(0):
        raise GateError(f"got retention {retention}, expected a positive period", "")
    cutoff = clock.now() - retention
    removed: list[str] = []
    for seal_path in sorted(archive_dir.glob("*.seal.json")):
        try:
            seal = ArchiveSeal.model_validate_json(seal_path.read_text())
        except (OSError, ValueError) as e:
            raise GateError(f"unreadable archive seal {seal_path}: {e}", "inspect it") from e
        if datetime.fromisoformat(seal.archived_at) < cutoff:
            (archive_dir / seal.file).unlink(missing_ok=True)
            seal_path.unlink()
            removed.append(seal.file)
    return removed
