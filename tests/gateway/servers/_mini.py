"""What the tiny line-delimited JSON-RPC test servers here share (imported as ``_mini``: a
script's own directory is on ``sys.path``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any


def send(msg: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def note(method: str, params: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "method": method, "params": params})


def reply(rid: Any, result: dict[str, Any]) -> None:
    send({"jsonrpc": "2.0", "id": rid, "result": result})


def refuse(rid: Any) -> None:
    if rid is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "nope"}})


def initialized(rid: Any, name: str, capabilities: dict[str, Any]) -> None:
    info = {"name": name, "version": "1"}
    reply(rid, {"protocolVersion": "2025-11-25", "capabilities": capabilities, "serverInfo": info})


def requests() -> Iterator[tuple[Any, Any, dict[str, Any]]]:
    """(method, id, params) of each message read from stdin until it closes."""
    for raw in sys.stdin:
        msg = json.loads(raw)
        yield msg.get("method"), msg.get("id"), msg.get("params") or {}
