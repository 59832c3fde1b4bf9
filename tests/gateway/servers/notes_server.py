"""A tiny stdio MCP server that logs and updates a resource, for notification routing tests.

``python notes_server.py URI`` lists URI (subscriptions supported: each subscribe is answered and
followed by one ``resources/updated``); its tool ``poke`` sends, before answering, log messages at
info, warning, error (hostile text) and emergency, then ``resources/updated`` for URI, then
``resources/list_changed`` (a marker that reaches every stream). It ignores ``logging/setLevel``
levels (it logs everything), so filtering is the gateway's.
"""

from __future__ import annotations

import sys

from _mini import initialized, note, refuse, reply, requests

URI = sys.argv[1]
POKE = {"name": "poke", "description": "Send notes.", "inputSchema": {"type": "object"}}


def log(level: str, data: object) -> None:
    note("notifications/message", {"level": level, "logger": "core\x1b[2J", "data": data})


def main() -> None:
    for method, rid, params in requests():
        if method == "initialize":
            caps = {"resources": {"subscribe": True}, "logging": {}, "tools": {}}
            initialized(rid, "notes", caps)
        elif method == "tools/list":
            reply(rid, {"tools": [POKE]})
        elif method == "resources/list":
            reply(rid, {"resources": [{"uri": URI, "name": "watched"}]})
        elif method == "resources/templates/list":
            reply(rid, {"resourceTemplates": []})
        elif method in ("resources/subscribe", "resources/unsubscribe", "logging/setLevel"):
            reply(rid, {})
            if method == "resources/subscribe":
                note("notifications/resources/updated", {"uri": params.get("uri")})
        elif method == "tools/call":
            log("info", "info \x1b[31mred")
            log("warning", "warn \u202eevil")
            log("error", {"osc": "\x1b]0;title\x07", "n": 1})
            log("emergency", "end")
            note("notifications/resources/updated", {"uri": URI})
            note("notifications/resources/list_changed", {})
            reply(rid, {"content": [{"type": "text", "text": "poked"}]})
        else:
            refuse(rid)


if __name__ == "__main__":
    main()
