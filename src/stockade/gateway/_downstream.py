"""One MCP client session to a downstream server over its stdio byte stream.

Speaks the 2025-11-25 handshake era. Server-to-client requests (sampling, roots, elicitation) are
refused; unknown responses, malformed and oversized lines are dropped and counted; a call that
does not answer in time is cancelled and reported as a :class:`DownstreamError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Callable
from typing import Any

from stockade import __version__

from ._config import ServerSpec
from ._errors import DownstreamError
from ._jsonrpc import METHOD_NOT_FOUND, LineReader, Oversized, encode, error_response, parse_message
from ._launcher import DownstreamProcess, Launcher

__all__ = ["DownstreamSession"]

PROTOCOL_VERSION = "2025-11-25"
_MAX_PAGES = 20
_MAX_TOOLS = 1000


class DownstreamSession:
    def __init__(
        self,
        spec: ServerSpec,
        launcher: Launcher,
        *,
        max_message_bytes: int,
        on_list_changed: Callable[[], None] | None = None,
        on_notification: Callable[[str, dict[str, Any]], None] | None = None,
        start_timeout_s: float = 30.0,
    ) -> None:
        self.spec = spec
        self._launcher = launcher
        self._max = max_message_bytes
        self._on_list_changed = on_list_changed
        self._on_notification = on_notification
        self._start_timeout = start_timeout_s
        self._proc: DownstreamProcess | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        self.server_info: dict[str, Any] = {}
        self.capabilities: dict[str, Any] = {}

    @property
    def running(self) -> bool:
        return self._proc is not None and self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._proc = await self._launcher.launch(self.spec)
        self._task = asyncio.create_task(self._read_loop(self._proc))
        init = await self.request(
            "initialize",
            {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "stockade-gateway", "version": __version__},
            },
            timeout_s=self._start_timeout,
        )
        info = init.get("serverInfo")
        self.server_info = info if isinstance(info, dict) else {}
        caps = init.get("capabilities")
        self.capabilities = caps if isinstance(caps, dict) else {}
        await self._send({"jsonrpc": "2.0", "method": "notifications/initialized"})

    async def close(self) -> None:
        if self._proc is not None:
            await self._proc.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._fail_all("downstream session closed")

    async def _send(self, msg: dict[str, Any]) -> None:
        if self._proc is None:
            raise DownstreamError(
                f"server {self.spec.name!r} is not started", "start the session first"
            )
        await self._proc.write(encode(msg))

    async def request(
        self, method: str, params: dict[str, Any], *, timeout_s: float
    ) -> dict[str, Any]:
        if not self.running:
            raise DownstreamError(
                f"server {self.spec.name!r} is not running", "see whether it crashed"
            )
        rid = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        try:
            await self._send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
            msg = await asyncio.wait_for(fut, timeout_s)
        except asyncio.CancelledError:
            with contextlib.suppress(DownstreamError):
                await self._cancel(rid, "cancelled by the client")
            raise
        except TimeoutError:
            with contextlib.suppress(DownstreamError):
                await self._cancel(rid, "timeout")
            raise DownstreamError(
                f"server {self.spec.name!r} did not answer {method} within {timeout_s:g}s",
                "raise call_timeout_s for this server or fix the server",
            ) from None
        finally:
            self._pending.pop(rid, None)
        if "error" in msg:
            err = msg["error"] if isinstance(msg["error"], dict) else {}
            raise DownstreamError(
                f"server {self.spec.name!r} answered {method} with error {err.get('code')}: "
                f"{str(err.get('message', ''))[:200]}",
                "see the server's documentation",
            )
        result = msg.get("result")
        if not isinstance(result, dict):
            raise DownstreamError(
                f"server {self.spec.name!r} sent a non-object result for {method}", "fix the server"
            )
        return result

    async def _cancel(self, rid: int, reason: str) -> None:
        params = {"requestId": rid, "reason": reason}
        await self._send({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": params})

    async def list_tools(self) -> list[dict[str, Any]]:
        tools: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(_MAX_PAGES):
            params: dict[str, Any] = {} if cursor is None else {"cursor": cursor}
            page = await self.request("tools/list", params, timeout_s=self.spec.call_timeout_s)
            batch = page.get("tools")
            if not isinstance(batch, list) or not all(isinstance(t, dict) for t in batch):
                raise DownstreamError(
                    f"server {self.spec.name!r} sent a malformed tools/list", "fix the server"
                )
            tools.extend(batch)
            if len(tools) > _MAX_TOOLS:
                raise DownstreamError(
                    f"server {self.spec.name!r} lists more than {_MAX_TOOLS} tools",
                    "split the server",
                )
            nxt = page.get("nextCursor")
            if not isinstance(nxt, str) or not nxt:
                return tools
            cursor = nxt
        raise DownstreamError(
            f"server {self.spec.name!r} paginates tools/list beyond {_MAX_PAGES} pages",
            "fix the server",
        )

    async def call_tool(
        self, tool: str, arguments: dict[str, Any], *, meta: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        return await self.request("tools/call", params, timeout_s=self.spec.call_timeout_s)

    async def notify(self, method: str, params: dict[str, Any]) -> None:
        """Send a notification (no answer expected) to the server."""
        await self._send({"jsonrpc": "2.0", "method": method, "params": params})

    def _fail_all(self, why: str) -> None:
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(
                    DownstreamError(f"server {self.spec.name!r}: {why}", "see whether it crashed")
                )
        self._pending.clear()

    async def _read_loop(self, proc: DownstreamProcess) -> None:
        lines = LineReader(proc.reader, self._max)
        try:
            while True:
                line = await lines.next()
                if line is None:
                    break
                if isinstance(line, Oversized) or not line.strip():
                    self.dropped += 1
                    continue
                msg = parse_message(line)
                if isinstance(msg, tuple):
                    self.dropped += 1
                    continue
                await self._dispatch(msg)
        finally:
            self._fail_all("server exited or closed its output")

    async def _dispatch(self, msg: dict[str, Any]) -> None:
        if "method" in msg:
            if "id" in msg:  # a server->client request: refused
                with contextlib.suppress(DownstreamError):
                    await self._send(
                        error_response(msg["id"], METHOD_NOT_FOUND, "refused by stockade gateway")
                    )
            elif msg["method"] == "notifications/tools/list_changed":
                if self._on_list_changed:
                    self._on_list_changed()
            elif self._on_notification is not None and isinstance(msg["method"], str):
                params = msg.get("params")
                self._on_notification(msg["method"], params if isinstance(params, dict) else {})
            return
        fut = self._pending.get(msg["id"]) if isinstance(msg.get("id"), int) else None
        if fut is None or fut.done():
            self.dropped += 1
            return
        fut.set_result(msg)
