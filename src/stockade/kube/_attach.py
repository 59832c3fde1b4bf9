"""Stdio attach to a run's Pod: the byte stream an MCP server speaks JSON-RPC over.

:class:`AttachStream` is the small seam (the adapter over the official client's websocket is in
``_client.py``, the scripted fake in :mod:`stockade.testing`). :class:`BoundedLog` keeps a
server's stderr as evidence without letting a flooding server exhaust memory: it keeps the last
``cap`` bytes, counts what it dropped and says so. :func:`pump` is the synchronous copy loop
``stockade run --backend kubernetes -i`` uses between the caller's stdio and the Pod.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from stockade.textsafe import safe_text

from ._errors import KubeError
from ._supervise import PodApi

__all__ = [
    "ATTACH_POLL_S",
    "STDERR_LIMIT_BYTES",
    "AttachApi",
    "AttachStream",
    "BoundedLog",
    "Pumped",
    "pump",
]

#: At most this much of an attached server's stderr is kept (the tail); the rest is counted.
STDERR_LIMIT_BYTES = 64 * 1024
#: Longest single wait for output from the Pod (every read is bounded).
ATTACH_POLL_S = 0.2
_CHUNK = 64 * 1024


class AttachStream(Protocol):
    """The Pod's stdio. Reads wait at most ``timeout_s`` and return ``b""`` when nothing came;
    once :attr:`is_open` is false and a read returns ``b""``, the stream has ended.
    Every method raises :class:`KubeError` on a transport failure."""

    def write(self, data: bytes) -> None: ...

    def close_stdin(self) -> None:
        """Signal end of input (the server sees EOF); output can still be read."""
        ...

    def read_stdout(self, timeout_s: float) -> bytes: ...

    def read_stderr(self, timeout_s: float) -> bytes: ...

    @property
    def is_open(self) -> bool: ...

    def close(self) -> None: ...


class AttachApi(PodApi, Protocol):
    def attach(self, namespace: str, pod: str) -> AttachStream:
        """Attach to the ``server`` container's stdin/stdout/stderr (no TTY)."""
        ...


class BoundedLog:
    """The tail (at most ``cap`` bytes) of a byte stream, with a count of what was dropped."""

    def __init__(self, cap: int = STDERR_LIMIT_BYTES) -> None:
        if cap <= 0:
            raise ValueError(f"cap {cap}, expected > 0")
        self.cap = cap
        self._buf = bytearray()
        self.dropped = 0
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        self._buf += data
        over = len(self._buf) - self.cap
        if over > 0:
            del self._buf[:over]
            self.dropped += over

    def __len__(self) -> int:
        return len(self._buf)

    def text(self) -> str:
        """Sanitised (no terminal controls, no invisible characters) for evidence and display."""
        body = safe_text(self._buf.decode("utf-8", "replace"))
        if self.dropped:
            return f"[stockade: {self.dropped} earlier bytes dropped]\n{body}"
        return body


@dataclass(frozen=True)
class Pumped:
    """What a :func:`pump` moved, and why it stopped."""

    stdin_bytes: int
    stdout_bytes: int
    stderr: str
    stderr_dropped: int
    ended_by: str


def _copy_stdin(source: BinaryIO, stream: AttachStream, stop: threading.Event) -> list[int]:
    moved = [0]

    def run() -> None:
        while not stop.is_set():
            data = source.read1(_CHUNK) if hasattr(source, "read1") else source.read(_CHUNK)
            try:
                if not data:
                    stream.close_stdin()  # the caller's EOF becomes the server's
                    return
                stream.write(data)
            except KubeError:  # the Pod went away: the read side reports the end
                return
            moved[0] += len(data)

    t = threading.Thread(target=run, name="stockade-attach-stdin", daemon=True)
    t.start()
    return moved


def pump(
    stream: AttachStream,
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO,
    expired: Callable[[], bool],
    stderr_cap: int = STDERR_LIMIT_BYTES,
    poll_s: float = ATTACH_POLL_S,
) -> Pumped:
    """Copy ``stdin`` to the Pod (in a daemon thread; its EOF closes the Pod's stdin) and the
    Pod's stdout to ``stdout`` until the stream ends or ``expired()`` (the run's deadline);
    stderr goes to a :class:`BoundedLog`.
    Writing to ``stdout`` blocks when the reader is slow, so the Pod's output is never
    buffered here beyond one read. The stream is closed on every exit path."""
    err = BoundedLog(stderr_cap)
    stop = threading.Event()
    moved_in = _copy_stdin(stdin, stream, stop) if stdin is not None else [0]
    out_bytes = 0
    ended_by = "stream closed"
    try:
        while True:
            if expired():
                ended_by = "deadline"
                break
            data = stream.read_stdout(poll_s)
            if data:
                stdout.write(data)
                stdout.flush()
                out_bytes += len(data)
            err.add(stream.read_stderr(0))
            if not data and not stream.is_open:
                err.add(stream.read_stderr(0))
                break
    finally:
        stop.set()
        with contextlib.suppress(KubeError):
            stream.close()
    return Pumped(moved_in[0], out_bytes, err.text(), err.dropped, ended_by)
