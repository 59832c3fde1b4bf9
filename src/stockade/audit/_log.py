"""Adapter: the append-only audit log file (implements :class:`stockade.models.AuditSink`).

Each append, under an exclusive ``flock`` on ``<log>.lock`` (waited for at most
``lock_timeout`` seconds): read the last line to learn ``seq``/``prev`` (and check its MAC), refuse
if the file ends in a torn line, redact the data, seal the event, write the whole line with one
``os.write`` on an ``O_APPEND`` descriptor, fsync as configured, and write a checkpoint when its
turn comes (every line whose ``seq % (checkpoint_every + 1) == checkpoint_every``) and at close.
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import threading
from collections.abc import Iterable
from datetime import UTC
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from stockade.errors import AuditError
from stockade.models import AuditEvent, Clock, SystemClock

from ._canon import GENESIS, canonical, event_mac, line_hash, seal_event
from ._checkpoint import CHECKPOINT_TYPE, Checkpoint, sign_checkpoint
from ._files import flock_bounded, line_start, open_lock, open_log_fd
from ._keys import AuditKeys, load_keys, load_or_create_keys
from ._redact import Redactor

__all__ = ["RESERVED_TYPES", "TORN_TAIL_TYPE", "AuditLog", "AuditTornTailError", "FsyncMode"]

FsyncMode = Literal["event", "batch", "never"]
TORN_TAIL_TYPE = "torn-tail"
RESERVED_TYPES = frozenset({CHECKPOINT_TYPE, TORN_TAIL_TYPE})


class AuditTornTailError(AuditError):
    """The log ends in a partial line (a crash mid-write); appends refuse until repaired."""


def _format_ts(clock: Clock) -> str:
    now = clock.now()
    if now.tzinfo is None:
        raise AuditError("the clock returned a naive datetime", "inject a timezone-aware Clock")
    return now.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class AuditLog:
    """The audit log sink. Build it with :meth:`open`; use as a context manager."""

    def __init__(
        self,
        path: Path,
        keys: AuditKeys,
        *,
        clock: Clock,
        checkpoint_every: int,
        fsync: FsyncMode,
        batch_size: int,
        secrets: Iterable[str],
        lock_timeout: float,
        lock_fd: int,
    ) -> None:
        if checkpoint_every < 1 or batch_size < 1:
            raise AuditError("checkpoint_every and batch_size must be >= 1", "")
        self.path = path
        self.keys = keys
        self.redactor = Redactor(secrets)
        self._clock = clock
        self._every = checkpoint_every
        self._fsync = fsync
        self._batch = batch_size
        self._timeout = lock_timeout
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()
        self._unsynced = 0
        self._tail: tuple[int, int, str] | None = None  # (file size, next seq, prev) last seen
        self._fd = open_log_fd(path)
        self._pid = os.getpid()
        self._closed = False
        self._last_type = ""

    @classmethod
    def open(
        cls,
        path: Path,
        key_dir: Path | None = None,
        *,
        keys: AuditKeys | None = None,
        clock: Clock | None = None,
        checkpoint_every: int = 100,
        fsync: FsyncMode = "event",
        batch_size: int = 100,
        secrets: Iterable[str] = (),
        lock_timeout: float = 30.0,
    ) -> AuditLog:
        """Open (creating if absent) the log at ``path``.

        Keys come from ``keys`` or are loaded from ``key_dir``; they are created there only when
        the log does not exist yet (see :mod:`stockade.audit._keys`).
        """
        if (keys is None) == (key_dir is None):
            raise AuditError("AuditLog.open needs exactly one of key_dir= or keys=", "")
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_fd = open_lock(path)
        try:
            flock_bounded(lock_fd, path, lock_timeout)
            try:
                if keys is None and key_dir is not None:
                    keys = load_or_create_keys(key_dir, path)
                if keys is None:  # unreachable: checked above; keeps the type exact
                    raise AuditError("AuditLog.open got no keys", "pass key_dir= or keys=")
                log = cls(
                    path,
                    keys,
                    clock=clock or SystemClock(),
                    checkpoint_every=checkpoint_every,
                    fsync=fsync,
                    batch_size=batch_size,
                    secrets=secrets,
                    lock_timeout=lock_timeout,
                    lock_fd=lock_fd,
                )
            finally:
                fcntl.flock(lock_fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(lock_fd)
            raise
        return log

    @classmethod
    def open_existing(cls, path: Path, key_dir: Path, **kw: Any) -> AuditLog:
        """Open a log that must already exist, with keys that must already exist."""
        if not path.is_file():
            raise AuditError(f"audit log {path} does not exist", "run `stockade audit init`")
        return cls.open(path, keys=load_keys(key_dir), **kw)

    # -- the AuditSink protocol -------------------------------------------------------------
    def append(
        self,
        type: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:
        """Redact ``data``, chain, MAC and durably append one event; return it as written."""
        if type in RESERVED_TYPES:
            raise AuditError(
                f"event type {type!r} is reserved for the log itself", "pick another type name"
            )
        if not isinstance(data, dict):
            raise AuditError(f"audit data must be a dict, got {data.__class__.__name__}", "")
        clean = self.redactor.data(data)
        rid = None if run_id is None else self.redactor.text(run_id)
        sid = None if session_id is None else self.redactor.text(session_id)
        with self._locked():
            event = self._write(type, clean, rid, sid)
            seq, _ = self._next()
            if seq % (self._every + 1) == self._every:
                self._checkpoint_locked()
            self._after_write()
        return event

    def add_secrets(self, values: Iterable[str]) -> None:
        """Mark more exact values secret: they are redacted from every later event."""
        self.redactor.add_secrets(values)

    def checkpoint(self) -> Checkpoint | None:
        """Sign the head now (no-op, returning None, when the last line is a checkpoint)."""
        with self._locked():
            cp = self._checkpoint_locked()
            self._sync()
        return cp

    def close(self, *, checkpoint: bool = True) -> None:
        """Seal with a checkpoint (unless told not to), fsync and release the files."""
        if self._closed:
            return
        try:
            if checkpoint:
                self.checkpoint()
            else:
                with self._mutex:
                    self._sync()
        finally:
            self._closed = True
            os.close(self._fd)
            os.close(self._lock_fd)

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(checkpoint=e is None)  # an error in flight must not be masked

    # -- internals ----------------------------------------------------------------------------
    def _locked(self) -> _Held:
        if self._closed:
            raise AuditError(f"audit log {self.path} is closed", "open it again")
        return _Held(self)

    def _follow_path(self) -> None:
        """If the log was moved away or replaced (rotation), append to what is at the path now."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            st = None
        cur = os.fstat(self._fd)
        if st is not None and (st.st_ino, st.st_dev) == (cur.st_ino, cur.st_dev):
            return
        self._sync()
        fd = open_log_fd(self.path)
        os.close(self._fd)
        self._fd, self._tail, self._last_type = fd, None, ""

    def _write(
        self, type: str, data: dict[str, Any], run_id: str | None, session_id: str | None
    ) -> AuditEvent:
        seq, prev = self._next()
        event, line = seal_event(
            seq=seq,
            ts=_format_ts(self._clock),
            type=type,
            data=data,
            prev=prev,
            hmac_key=self.keys.hmac_key,
            run_id=run_id,
            session_id=session_id,
        )
        self._write_line(line, seq)
        self._last_type = type
        return event

    def _write_line(self, line: bytes, seq: int) -> None:
        buf = line + b"\n"
        size = os.fstat(self._fd).st_size
        self._tail = None
        written = os.write(self._fd, buf)
        if written != len(buf):
            raise AuditTornTailError(
                f"short write to {self.path}: {written} of {len(buf)} bytes (the tail is torn)",
                "free disk space, then run `stockade audit repair`",
            )
        self._tail = (size + len(buf), seq + 1, line_hash(line))
        self._unsynced += 1

    def _checkpoint_locked(self) -> Checkpoint | None:
        seq, prev = self._next()
        if seq == 0 or self._last_type == CHECKPOINT_TYPE:
            return None
        cp = sign_checkpoint(self.keys.signing_key, seq=seq, ts=_format_ts(self._clock), head=prev)
        unsealed: dict[str, Any] = {
            "seq": seq,
            "ts": cp.ts,
            "type": CHECKPOINT_TYPE,
            "run_id": None,
            "session_id": None,
            "data": cp.event_data(),
            "prev": prev,
        }
        line = canonical({**unsealed, "mac": event_mac(self.keys.hmac_key, unsealed)})
        self._write_line(line, seq)
        self._last_type = CHECKPOINT_TYPE
        return cp

    def _after_write(self) -> None:
        if self._fsync == "event" or (self._fsync == "batch" and self._unsynced >= self._batch):
            self._sync()

    def _sync(self) -> None:
        if self._unsynced and self._fsync != "never":
            os.fsync(self._fd)
        self._unsynced = 0

    def _next(self) -> tuple[int, str]:
        """(seq, prev) for the next line, from the file's tail (cached while the size holds)."""
        size = os.fstat(self._fd).st_size
        if self._tail is not None and self._tail[0] == size:
            return self._tail[1], self._tail[2]
        self._last_type = ""
        if size == 0:
            self._tail = (0, 0, GENESIS)
            return 0, GENESIS
        last = self._read_last_line(size)
        try:
            obj = json.loads(last)
            ok = isinstance(obj, dict) and canonical(obj) == last and isinstance(obj["seq"], int)
        except (ValueError, KeyError, TypeError, AuditError):
            ok = False
        if not ok:
            raise AuditError(
                f"the last line of {self.path} is not a valid audit event",
                "run `stockade audit verify` to see what happened",
            )
        body = {k: v for k, v in obj.items() if k != "mac"}
        if not hmac.compare_digest(str(obj.get("mac")), event_mac(self.keys.hmac_key, body)):
            raise AuditError(
                f"the last line of {self.path} fails its MAC: edited, or these are not its keys",
                "run `stockade audit verify` with the HMAC key; never append to a forged log",
            )
        self._last_type = str(obj.get("type"))
        self._tail = (size, obj["seq"] + 1, line_hash(last))
        return self._tail[1], self._tail[2]

    def _read_last_line(self, size: int) -> bytes:
        if os.pread(self._fd, 1, size - 1) != b"\n":
            raise AuditTornTailError(
                f"{self.path} ends in a torn line (no trailing newline): a write was cut short",
                "inspect with `stockade audit verify`, then run `stockade audit repair`",
            )
        start = line_start(self._fd, size - 1)
        return os.pread(self._fd, size - 1 - start, start)

    def repair_torn_tail(self) -> AuditEvent | None:
        """Cut a torn last line into ``<log>.torn-<sha256 prefix>`` and record a torn-tail event.

        Returns None when the tail is not torn. The fragment was never a complete event.
        """
        with self._locked():
            size = os.fstat(self._fd).st_size
            if size == 0 or os.pread(self._fd, 1, size - 1) == b"\n":
                return None
            cut = line_start(self._fd, size)
            fragment = os.pread(self._fd, size - cut, cut)
            digest = hashlib.sha256(fragment).hexdigest()
            side = self.path.with_name(f"{self.path.name}.torn-{digest[:16]}")
            fd = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            try:
                os.write(fd, fragment)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.ftruncate(self._fd, cut)
            self._tail = None
            event = self._write(
                TORN_TAIL_TYPE,
                {"bytes": len(fragment), "sha256": "sha256:" + digest, "saved_to": side.name},
                None,
                None,
            )
            self._sync()
        return event


class _Held:
    """Thread mutex + exclusive flock for the duration of one append."""

    def __init__(self, log: AuditLog) -> None:
        self._log = log

    def __enter__(self) -> None:
        log = self._log
        if os.getpid() != log._pid:
            raise AuditError(
                "an AuditLog was used in a forked child: the lock would be shared with the parent",
                "open a new AuditLog in each process",
            )
        log._mutex.acquire()
        try:
            flock_bounded(log._lock_fd, log.path, log._timeout)
            log._follow_path()
        except BaseException:
            fcntl.flock(log._lock_fd, fcntl.LOCK_UN)
            log._mutex.release()
            raise

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            fcntl.flock(self._log._lock_fd, fcntl.LOCK_UN)
        finally:
            self._log._mutex.release()
        if isinstance(e, OSError):
            raise AuditError(
                f"audit log I/O failed on {self._log.path}: {e.strerror or e}",
                "check the disk (space, permissions), then `stockade audit verify` the log",
            ) from e
