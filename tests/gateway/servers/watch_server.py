"""A tiny stdio MCP server offering resources with subscriptions, for raw-uri routing tests.

``python watch_server.py URI TEMPLATE LOG`` lists URI (and offers TEMPLATE unless empty); reads
echo the uri asked for; a subscribe is answered and then followed by one ``resources/updated`` for
that uri; every subscribe/unsubscribe it receives is appended to the file LOG (``<method> <uri>``).
"""

from __future__ import annotations

import json
import sys

URI = sys.argv[1]
TEMPLATE = sys.argv[2]
LOG = sys.argv[3]


def send(msg: dict[str, object]) -> None:
    sys.stdout.write(json.dumps(msg) + "\n")
    sys.stdout.flush()


def main() -> None:
    for raw in sys.stdin:
        msg = json.loads(raw)
        method, rid = msg.get("method"), msg.get("id")
        params = msg.get("params") or {}
        if method == "initialize":
            caps = {"resources": {"subscribe": True}}
            info = {"name": "watch", "version": "1"}
            result = {"protocolVersion": "2025-11-25", "capabilities": caps, "serverInfo": info}
            send({"jsonrpc": "2.0", "id": rid, "result": result})
        elif method == "tools/list":
            send({"jsonrpc": "2.0", "id": rid, "result": {"tools": []}})
        elif method == "resources/list":
            res = [{"uri": URI, "name": "watched"}]
            send({"jsonrpc": "2.0", "id": rid, "result": {"resources": res}})
        elif method == "resources/templates/list":
            tpls = [{"uriTemplate": TEMPLATE, "name": "tpl"}] if TEMPLATE else []
            send({"jsonrpc": "2.0", "id": rid, "result": {"resourceTemplates": tpls}})
        elif method == "resources/read":
            item = {"uri": params.get("uri"), "mimeType": "text/plain", "text": "watched text"}
            send({"jsonrpc": "2.0", "id": rid, "result": {"contents": [item]}})
        elif method in ("resources/subscribe", "resources/unsubscribe"):
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(f"{method} {params.get('uri')}\n")
            send({"jsonrpc": "2.0", "id": rid, "result": {}})
            if method == "resources/subscribe":
                note = {"uri": params.get("uri")}
                send(
                    {"jsonrpc": "2.0", "method": "notifications/resources/updated", "params": note}
                )
        elif rid is not None:
            send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "nope"}})


if __name__ == "__main__":
    main()
