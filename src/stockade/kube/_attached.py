"""An attached Pod as an asyncio byte stream (the gateway's downstream process handle).

A reader thread copies the Pod's stdout into an ``asyncio.StreamReader`` one chunk at a time,
waiting for each chunk to be handed over, and stops reading while the reader's buffer is over
its limit (the reader's own flow control, through a transport that only pauses and resumes):
a server that floods stdout is held back by the websocket, never buffered here. Its stderr goes
to a :class:`BoundedLog`; past ``stderr_kill_bytes`` in total the stream is closed and the end
reason says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

from ._attach import ATTACH_POLL_S, STDERR_LIMIT_BYTES, AttachStream, BoundedLog
from ._errors import KubeError

__all__ = ["STDERR_KILL_BYTES", "AttachedPod"]

#: A server that writes more than this to stderr in total is stopped (recorded as a flood).
STDERR_KILL_BYTES = 16 * 1024 * 1024
_READER_LIMIT = 2**16
_HANDOVER_S = 30.0


class _Flow(asyncio.ReadTransport):
    """Only the flow control a StreamReader asks its transport for."""

    def __init__(self) -> None:
        super().__init__()
        self.may_read = threading.Event()
        self.may_read.set()

    def pause_reading(self) -> None:
        self.may_read.clear()

    def resume_reading(self) -> None:
        self.may_read.set()

    def is_reading(self) -> bool:
        return self.may_read.is_set()


class AttachedPod:
    """``reader``/``write``/``close``/``returncode`` over an :class:`AttachStream`.

    ``on_close`` runs once (in a worker thread) after the stream is closed: it deletes the run's
    objects and returns the exit code (``None`` when unknown) and the run-store writes, which
    are then made in the event loop's thread."""

    def __init__(
        self,
        stream: AttachStream,
        on_close: Callable[[AttachedPod], tuple[int | None, Callable[[], None]]],
        *,
        loop: asyncio.AbstractEventLoop,
        stderr_cap: int = STDERR_LIMIT_BYTES,
        stderr_kill_bytes: int = STDERR_KILL_BYTES,
    ) -> None:
        self._stream = stream
        self._on_close = on_close
        self._loop = loop
        self._reader = asyncio.StreamReader(limit=_READER_LIMIT, loop=loop)
        self._flow = _Flow()
        self._reader.set_transport(self._flow)
        self.stderr = BoundedLog(stderr_cap)
        self._kill_at = stderr_kill_bytes
        self._stop = threading.Event()
        self._write_lock = threading.Lock()
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._code: int | None = None
        self.ended_by = ""
        self._thread = threading.Thread(target=self._pump, name="stockade-attach", daemon=True)
        self._thread.start()

    @property
    def reader(self) -> asyncio.StreamReader:
        return self._reader

    @property
    def returncode(self) -> int | None:
        return self._code

    def _hand_over(self, data: bytes) -> bool:
        done = threading.Event()

        def feed() -> None:
            self._reader.feed_data(data)
            done.set()

        try:
            self._loop.call_soon_threadsafe(feed)
        except RuntimeError:  # the event loop is gone
            return False
        return done.wait(_HANDOVER_S)

    def _pump(self) -> None:
        why = "the stream closed"
        kill = False
        try:
            while not self._stop.is_set():
                if not self._flow.may_read.wait(ATTACH_POLL_S):
                    continue  # the gateway has not consumed what it has: hold the Pod back
                data = self._stream.read_stdout(ATTACH_POLL_S)
                if data and not self._hand_over(data):
                    why = "the gateway stopped taking the server's output"
                    break
                self.stderr.add(self._stream.read_stderr(0))
                if self.stderr.total > self._kill_at:
                    why = f"stderr flood: more than {self._kill_at} bytes; the server was stopped"
                    kill = True
                    break
                if not data and not self._stream.is_open:
                    break
            else:
                why = "closed by the gateway"
        except KubeError as e:
            why = f"attach failed: {e.what}"
        self.ended_by = why
        with contextlib.suppress(KubeError):
            self._stream.close()
        with contextlib.suppress(RuntimeError):  # no loop left to tell
            self._loop.call_soon_threadsafe(self._reader.feed_eof)
            if kill:  # delete the Pod now, not when the gateway gets round to closing it
                self._loop.call_soon_threadsafe(self._kill)

    def _kill(self) -> None:
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.ensure_future(self._close_once(), loop=self._loop)

    async def write(self, data: bytes) -> None:
        from stockade.gateway import DownstreamError

        def send() -> None:
            with self._write_lock:
                self._stream.write(data)

        if self._closed or not self._stream.is_open:
            raise DownstreamError("the attached Pod's stdin is closed", "see the server's run")
        try:
            await asyncio.to_thread(send)
        except KubeError as e:
            raise DownstreamError(f"writing to the attached Pod failed: {e.what}", e.fix) from e

    def _finish(self) -> tuple[int | None, Callable[[], None]]:
        self._stop.set()
        with contextlib.suppress(KubeError):  # the rollback below runs regardless
            self._stream.close()
        self._thread.join(timeout=ATTACH_POLL_S * 10 + _HANDOVER_S)
        return self._on_close(self)

    async def close(self) -> None:
        """Idempotent; a second caller waits for the first close to finish."""
        if self._closing is None:
            self._closed = True
            self._closing = asyncio.ensure_future(self._close_once())
        await asyncio.shield(self._closing)

    async def _close_once(self) -> None:
        code, record = await asyncio.to_thread(self._finish)
        record()  # in the loop's thread: the run store's connection lives here
        self._code = code if code is not None else -1
