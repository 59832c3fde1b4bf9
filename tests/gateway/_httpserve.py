"""A real loopback HTTP server for gateway transport tests: uvicorn serving an
:class:`HttpTransport` on a free port, for clients that need real streaming (httpx's ASGI
transport buffers whole responses, so a GET event stream needs a socket).

Imported as ``_httpserve`` (this directory is on ``sys.path`` for its tests).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from stockade.gateway import HttpTransport

__all__ = ["INIT", "free_port", "serving"]

INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"},
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(transport: HttpTransport) -> AsyncIterator[str]:
    """Serve ``transport`` on 127.0.0.1 at its port for the block; yields the base URL."""
    server = uvicorn.Server(
        uvicorn.Config(
            transport.app,
            host="127.0.0.1",
            port=transport.port,
            log_level="warning",
            lifespan="off",
        )
    )
    task = asyncio.ensure_future(server.serve())
    try:
        for _ in range(500):  # bounded wait for uvicorn to listen
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "uvicorn did not start listening"
        yield f"http://127.0.0.1:{transport.port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
