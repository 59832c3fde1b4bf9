"""A tiny stdio MCP server that logs and updates a resource, for notification routing tests.

``python notes_server.py URI`` lists URI (subscriptions supported: each subscribe is answered and
followed by one ``resources/updated``); its tool ``poke`` sends, before answering, log messages at
info, warning, error (hostile text) and emergency, then ``resources/updated`` for URI, then
``resources/list_changed`` (a marker that reaches every stream). It ignores ``logging/setLevel``
levels (it logs everything), so filtering is the gateway's.
"""

from __future__ import annotations

import json
import sys

URI = sys.argv[1]
POKE = {"name": "poke", "description": "Send notes.", "inputSchema": {"type": "object"}}


def send(msg: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def note(method: str, params: dict[str, object]) -> None:
    send({"jsonrpc": "2.0", "method": method, "params": params})


def log(level: str, data: object) -> None:
    note("notifications/message", {"level": level, "logger": "core\x1b[2J", "data": data})


def main() -> None:
    for raw in sys.stdin:
        msg = json.loads(raw)
        method, rid = msg.get("method"), msg.get("id")
        params = msg.get("params") or {}
        if method == "initialize":
            caps = {"resources": {"subscribe": True}, "logging": {}, "tools": {}}
            info = {"name": "notes", "version": "1"}
            result = {"protocolVersion": "2025-11-25", "capabilities": caps, "serverInfo": info}
            send({"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [POKE]}})
        elif method == "resources/list":
            res = [{"uri": URI, "name": "watched"}]
            send({"jsonrpc": "2.0", "id": rid, "result": {"resources": res}})
        elif method == "resources/templates/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"resourceTemplates": []}})
        elif method in ("resources/subscribe", "resources/unsubscribe", "logging/setLevel"):
            send({"jsonrpc": "2.0", "id": rid, "result": {}})
            if method == "resources/subscribe":
                note("notifications/resources/updated", {"uri": params.get("uri")})
        elif method == "tools/call":
            log("info", "info \x1b[31mred")
            log("warning", "warn \u202eevil")
            log("error", {"osc": "\x1b]0;title\x07", "n": 1})
            log("emergency", "end")
            note("notifications/resources/updated", {"uri": URI})
            note("notifications/resources/list_changed", {})
            text = [{"type": "text", "text": "poked"}]
            send({"jsonrpc": "2.0", "id": rid, "result": {"content": text}})
        elif rid is not None:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "nope"}})


if __name__ == "__main__":
    main()
