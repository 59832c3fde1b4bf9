"""Adapter helpers: the lock file, the log descriptor, reading the last line."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from stockade.errors import AuditError

__all__ = ["flock_bounded", "fsync_dir", "line_start", "open_lock", "open_log_fd"]

_TAIL_CHUNK = 64 * 1024


def open_lock(path: Path, *, create: bool = True) -> int:
    """Open ``<log>.lock`` (created 0600 when ``create``)."""
    lock = path.with_name(path.name + ".lock")
    flags = os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY)
    try:
        return os.open(lock, flags, 0o600)
    except OSError as e:
        raise AuditError(
            f"cannot open lock file {lock}: {e.strerror}", "check its permissions"
        ) from e


def fsync_dir(path: Path) -> None:
    """Make a file creation/removal in directory ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_log_fd(path: Path) -> int:
    """An ``O_APPEND`` read/write descriptor on the log (created 0600; symlinks refused).

    A newly created log has its directory entry fsynced too.
    """
    try:
        try:
            return os.open(path, os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        fd = os.open(
            path,
            os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        fsync_dir(path.parent)
        return fd
    except FileExistsError:  # another process created it just now
        return open_log_fd(path)
    except OSError as e:
        raise AuditError(
            f"cannot open audit log {path}: {e.strerror} (symlinks are refused)",
            "make it a regular file you own",
        ) from e


def flock_bounded(fd: int, path: Path, timeout: float, op: int = fcntl.LOCK_EX) -> None:
    """Take ``flock(op)`` on ``fd``, polling for at most ``timeout`` seconds, else AuditError."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise AuditError(
                    f"could not lock {path} within {timeout}s: another writer holds it",
                    "find the stuck stockade process (it holds <log>.lock) and stop it",
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


def line_start(fd: int, end: int) -> int:
    """Offset just after the last newline before offset ``end`` (0 if there is none)."""
    start = end
    while start > 0:
        lo = max(0, start - _TAIL_CHUNK)
        nl = os.pread(fd, start - lo, lo).rfind(b"\n")
        if nl >= 0:
            return lo + nl + 1
        start = lo
    return 0
