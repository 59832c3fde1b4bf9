"""JSON-RPC 2.0 framing for MCP stdio: newline-delimited messages with a size bound."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from stockade.models import Frozen

__all__ = [
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "METHOD_NOT_FOUND",
    "PARSE_ERROR",
    "LineReader",
    "Oversized",
    "encode",
    "error_response",
    "parse_message",
    "result_response",
]

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class Oversized(Frozen):
    """A line longer than the bound; its bytes were discarded."""

    size: int


class LineReader:
    """Reads newline-delimited messages, never buffering more than ``max_bytes`` of one line."""

    def __init__(self, reader: asyncio.StreamReader, max_bytes: int) -> None:
        self._reader = reader
        self._max = max_bytes
        self._buf = bytearray()

    async def next(self) -> bytes | Oversized | None:
        """The next line (without newline), an :class:`Oversized` marker, or None at EOF."""
        discarding = 0
        while True:
            nl = self._buf.find(b"\n")
            if nl >= 0:
                line = bytes(self._buf[:nl])
                del self._buf[: nl + 1]
                if discarding or len(line) > self._max:
                    return Oversized(size=discarding + len(line))
                return line.rstrip(b"\r")
            if len(self._buf) > self._max:
                discarding += len(self._buf)
                self._buf.clear()
            chunk = await self._reader.read(65536)
            if not chunk:
                if discarding:
                    return Oversized(size=discarding + len(self._buf))
                if self._buf:
                    line = bytes(self._buf)
                    self._buf.clear()
                    return line
                return None
            self._buf.extend(chunk)


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"


def error_response(id_: Any, code: int, message: str, data: Any = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": id_, "error": err}


def result_response(id_: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": id_, "result": result}


def _valid_id(v: Any) -> bool:
    return (isinstance(v, str) and len(v) <= 256) or (
        isinstance(v, int) and not isinstance(v, bool)
    )


def parse_message(line: bytes) -> dict[str, Any] | tuple[int, str, Any]:
    """A JSON-RPC message as a dict, or ``(code, message, id)`` saying why it is unacceptable."""
    try:
        msg = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return (PARSE_ERROR, "parse error: not UTF-8 JSON", None)
    if not isinstance(msg, dict):
        return (INVALID_REQUEST, "invalid request: batches and non-objects are not accepted", None)
    id_ = msg.get("id")
    if msg.get("jsonrpc") != "2.0":
        return (
            INVALID_REQUEST,
            "invalid request: jsonrpc must be '2.0'",
            id_ if _valid_id(id_) else None,
        )
    if "id" in msg and not _valid_id(id_):
        return (INVALID_REQUEST, "invalid request: id must be a string or integer", None)
    if "method" in msg:
        if not isinstance(msg["method"], str):
            return (INVALID_REQUEST, "invalid request: method must be a string", id_)
        if "params" in msg and not isinstance(msg["params"], dict):
            return (INVALID_REQUEST, "invalid request: params must be an object", id_)
        return msg
    if "id" in msg and ("result" in msg or "error" in msg):
        return msg
    return (
        INVALID_REQUEST,
        "invalid request: neither a request, notification nor response",
        id_ if _valid_id(id_) else None,
    )
