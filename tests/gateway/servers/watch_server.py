"""A tiny stdio MCP server offering resources with subscriptions, for raw-uri routing tests.

``python watch_server.py URI TEMPLATE LOG`` lists URI (and offers TEMPLATE unless empty); reads
echo the uri asked for; a subscribe is answered and then followed by one ``resources/updated`` for
that uri; every subscribe/unsubscribe it receives is appended to the file LOG (``<method> <uri>``).
"""

from __future__ import annotations

import sys

from _mini import initialized, note, refuse, reply, requests

URI = sys.argv[1]
TEMPLATE = sys.argv[2]
LOG = sys.argv[3]


def main() -> None:
    for method, rid, params in requests():
        if method == "initialize":
            initialized(rid, "watch", {"resources": {"subscribe": True}})
        elif method == "tools/list":
            reply(rid, {"tools": []})
        elif method == "resources/list":
            reply(rid, {"resources": [{"uri": URI, "name": "watched"}]})
        elif method == "resources/templates/list":
            tpls = [{"uriTemplate": TEMPLATE, "name": "tpl"}] if TEMPLATE else []
            reply(rid, {"resourceTemplates": tpls})
        elif method == "resources/read":
            item = {"uri": params.get("uri"), "mimeType": "text/plain", "text": "watched text"}
            reply(rid, {"contents": [item]})
        elif method in ("resources/subscribe", "resources/unsubscribe"):
            with open(LOG, "a", encoding="utf-8") as log:
                log.write(f"{method} {params.get('uri')}\n")
            reply(rid, {})
            if method == "resources/subscribe":
                note("notifications/resources/updated", {"uri": params.get("uri")})
        else:
            refuse(rid)


if __name__ == "__main__":
    main()
