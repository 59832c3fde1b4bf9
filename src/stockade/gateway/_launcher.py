"""How the gateway reaches a downstream server process: a bidirectional byte stream.

:class:`Launcher` is the seam to the sandbox runner. :class:`SubprocessLauncher` runs the command
as a plain child process (tests, and hosts where the operator explicitly accepts no sandbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from typing import Protocol

from ._config import ServerSpec
from ._errors import DownstreamError

__all__ = ["DownstreamProcess", "Launcher", "SubprocessLauncher"]

_BASE_ENV = ("PATH", "LANG", "LC_ALL", "TZ")


class DownstreamProcess(Protocol):
    """A running server: read its stdout, write its stdin, stop it."""

    @property
    def reader(self) -> asyncio.StreamReader: ...

    async def write(self, data: bytes) -> None: ...

    async def close(self) -> None: ...

    @property
    def returncode(self) -> int | None: ...


class Launcher(Protocol):
    async def launch(self, server: ServerSpec) -> DownstreamProcess: ...


class _Child:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self._proc = proc
        if proc.stdout is None or proc.stdin is None:
            raise DownstreamError(
                "server process has no pipes", "launch it with stdin/stdout pipes"
            )
        self._reader = proc.stdout
        self._stdin = proc.stdin

    @property
    def reader(self) -> asyncio.StreamReader:
        return self._reader

    @property
    def returncode(self) -> int | None:
        return self._proc.returncode

    async def write(self, data: bytes) -> None:
        try:
            self._stdin.write(data)
            await self._stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as e:
            raise DownstreamError(
                "downstream server closed its input", "see whether it crashed"
            ) from e

    async def close(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._proc.pid, signal.SIGKILL)  # its own group: started by us
        with contextlib.suppress(ProcessLookupError):
            self._proc.kill()
        await self._proc.wait()
        self._stdin.close()


class SubprocessLauncher:
    """Plain child process in its own process group, minimal environment, stderr discarded."""

    async def launch(self, server: ServerSpec) -> DownstreamProcess:
        env = {k: os.environ[k] for k in _BASE_ENV if k in os.environ}
        env.update(server.env)
        try:
            proc = await asyncio.create_subprocess_exec(
                *server.command,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.DEVNULL,
                env=env,
                cwd=server.cwd,
                start_new_session=True,
            )
        except OSError as e:
            raise DownstreamError(
                f"cannot start server {server.name!r} ({server.command[0]}): {e.strerror}",
                "check the command in the gateway configuration",
            ) from e
        return _Child(proc)
