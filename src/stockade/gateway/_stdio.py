"""The stdio transport: newline-delimited JSON-RPC on the gateway's own stdin/stdout."""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from stockade.approvals._elicit_channel import ElicitationChannel, ElicitationFailed
from stockade.errors import StockadeError
from stockade.textsafe import safe_text

from ._gateway import Gateway
from ._jsonrpc import (
    INTERNAL_ERROR,
    INVALID_REQUEST,
    LineReader,
    Oversized,
    encode,
    error_response,
    parse_message,
)

__all__ = ["ClientRequests", "serve_stdio", "serve_streams"]

Write = Callable[[bytes], Awaitable[None]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ClientRequests:
    """Server->client requests of one connection (stdio) or session (HTTP): ids of our own,
    unguessable and single use, each wait bounded."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._next = 0

    async def request(
        self, method: str, params: dict[str, Any], timeout_s: float, *, send: Send | None = None
    ) -> dict[str, Any]:
        """Send a request (on ``send``, else the connection's) and wait for its answer."""
        self._next += 1
        rid = f"stockade-{self._next}-{secrets.token_hex(8)}"
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[rid] = fut
        msg = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        try:
            async with asyncio.timeout(timeout_s):
                await (send or self._send)(msg)
                return await fut
        except TimeoutError:
            raise ElicitationFailed(
                f"no answer to {method} within {timeout_s:g}s", "answer the request sooner"
            ) from None
        finally:
            self._pending.pop(rid, None)

    def resolve(self, msg: dict[str, Any]) -> bool:
        """Route a response to its waiting request; ``False`` if it answers none of ours."""
        rid = msg.get("id")
        fut = self._pending.get(rid) if isinstance(rid, str) else None
        if fut is None or fut.done():
            return False
        result = msg.get("result")
        if isinstance(result, dict):
            fut.set_result(result)
        else:
            fut.set_exception(
                ElicitationFailed(
                    "the client answered with an error, expected a result", "check the client"
                )
            )
        return True


async def serve_streams(
    gateway: Gateway,
    reader: asyncio.StreamReader,
    write: Write,
    *,
    client: str,
    channel: ElicitationChannel | None = None,
) -> None:
    """Answer messages from ``reader`` until EOF; each request runs concurrently."""
    lock = asyncio.Lock()

    async def send(msg: dict[str, Any]) -> None:
        async with lock:
            await write(encode(msg))

    gateway.set_notifier(send)
    outgoing = ClientRequests(send)
    lines = LineReader(reader, gateway.config.max_message_bytes)
    tasks: set[asyncio.Task[None]] = set()
    inflight: dict[str | int, asyncio.Task[None]] = {}

    async def answer(msg: dict[str, Any]) -> None:
        try:
            resp = await gateway.handle(msg, client=client)
        except StockadeError as e:  # the transport boundary: fail closed with an error answer
            if "id" not in msg:
                return
            resp = error_response(msg["id"], INTERNAL_ERROR, safe_text(e.what, limit=300))
        if resp is not None:
            await send(resp)

    while True:
        line = await lines.next()
        if line is None:
            break
        if isinstance(line, Oversized):
            await send(
                error_response(
                    None, INVALID_REQUEST, f"message of {line.size} bytes exceeds the limit"
                )
            )
            continue
        if not line.strip():
            continue
        msg = parse_message(line)
        if isinstance(msg, tuple):
            code, text, rid = msg
            await send(error_response(rid, code, text))
            continue
        if "method" not in msg and outgoing.resolve(msg):
            continue
        if msg.get("method") == "initialize" and channel is not None:
            params = msg.get("params")
            caps = params.get("capabilities") if isinstance(params, dict) else None
            channel.bind(outgoing.request, caps if isinstance(caps, dict) else None)
        if msg.get("method") == "notifications/cancelled":
            params = msg.get("params") or {}
            req = params.get("requestId") if isinstance(params, dict) else None
            target = inflight.get(req) if isinstance(req, (str, int)) else None
            if target is not None:
                target.cancel()  # the downstream call is cancelled too; no response is sent
            continue
        task = asyncio.create_task(answer(msg))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        rid = msg.get("id")
        if "method" in msg and isinstance(rid, (str, int)):
            inflight[rid] = task
            task.add_done_callback(_forget(inflight, rid))
    if tasks:
        await asyncio.wait(tasks, timeout=gateway.config.approval_timeout_s + 5)
        for t in tasks:
            t.cancel()


def _forget(
    inflight: dict[str | int, asyncio.Task[None]], rid: str | int
) -> Callable[[asyncio.Task[None]], None]:
    def done(_task: asyncio.Task[None]) -> None:
        inflight.pop(rid, None)

    return done


async def serve_stdio(
    gateway: Gateway, *, client: str = "stdio", channel: ElicitationChannel | None = None
) -> None:
    """Serve on stdin/stdout; ``channel`` (when given) may send ``elicitation/create`` to a
    client that declared the capability at ``initialize``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**16)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    out_fd = sys.stdout.fileno()

    async def write(data: bytes) -> None:
        await loop.run_in_executor(None, _write_all, out_fd, data)

    await gateway.start()
    ticker = asyncio.create_task(idle_ticker(gateway))
    try:
        await serve_streams(gateway, reader, write, client=client, channel=channel)
    finally:
        ticker.cancel()
        await gateway.close()


async def idle_ticker(gateway: Gateway, every_s: float = 5.0) -> None:
    """Stops idle servers periodically (a wall-clock loop: the edge, not the core)."""
    while True:
        await asyncio.sleep(every_s)
        await gateway.stop_idle()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]
