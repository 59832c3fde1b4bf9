"""Resources pass-through: namespaced URIs, policy-gated reads, untrusted contents.

A downstream resource ``file:///a`` of server ``docs`` is shown to the agent as
``stockade+resource://docs/file%3A%2F%2F%2Fa``. Reading it is decided like a tool call named
``resources/read`` on that server (``arguments = {"uri": <original>}``), so the policy allows it
with a ``tool: resources/read`` rule; contents are untrusted: sanitised, wrapped, bounded, and they
taint the context. Listing shows only servers whose policy could allow the read.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, unquote

from stockade.textsafe import safe_text

from ._chain import CallContext, ToolResult
from ._errors import NamespaceError
from ._trust import TRUST_META_KEY, _clean
from ._untrusted import UntrustedOutput, envelope

__all__ = ["READ_TOOL", "SCHEME", "ResourceOutput", "list_entry", "unwrap_uri", "wrap_uri"]

SCHEME = "stockade+resource"
READ_TOOL = "resources/read"


def wrap_uri(server: str, uri: str) -> str:
    """The gateway uri under which the agent sees ``server``'s resource ``uri``."""
    return f"{SCHEME}://{server}/{quote(uri, safe='')}"


def unwrap_uri(uri: str) -> tuple[str, str]:
    """``(server, original uri)`` of a gateway uri; anything else raises :class:`NamespaceError`."""
    prefix = f"{SCHEME}://"
    if not uri.startswith(prefix):
        raise NamespaceError(
            f"resource uri {uri[:80]!r} is not a gateway uri", f"use the {SCHEME}:// uris listed"
        )
    server, sep, rest = uri[len(prefix) :].partition("/")
    if not sep or not server or not rest:
        raise NamespaceError(f"resource uri {uri[:80]!r} is malformed", "use a listed uri")
    return server, unquote(rest)


def list_entry(server: str, res: dict[str, Any]) -> dict[str, Any] | None:
    uri = res.get("uri")
    if not isinstance(uri, str) or not uri:
        return None
    out: dict[str, Any] = {
        "uri": wrap_uri(server, uri),
        "name": safe_text(str(res.get("name", uri)), single_line=True, limit=200),
    }
    for key in ("title", "description"):
        if isinstance(res.get(key), str):
            out[key] = safe_text(res[key], limit=1000)
    if isinstance(res.get("mimeType"), str):
        out["mimeType"] = safe_text(res["mimeType"], single_line=True, limit=200)
    return out


class ResourceOutput(UntrustedOutput):
    """Like :class:`OutputHandling` for ``resources/read`` results (``contents``)."""

    def shape(self, ctx: CallContext, raw: dict[str, Any]) -> ToolResult:
        budget = self.limit
        contents: list[dict[str, Any]] = []
        items = raw.get("contents")
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            entry: dict[str, Any] = {"uri": wrap_uri(ctx.call.server, str(item.get("uri", "")))}
            if isinstance(item.get("mimeType"), str):
                entry["mimeType"] = safe_text(item["mimeType"], single_line=True, limit=200)
            if isinstance(item.get("text"), str):
                text = _clean(item["text"], max(budget, 0))
                budget -= len(text)
                entry["text"] = envelope(text, ctx.exposed_name)
            elif isinstance(item.get("blob"), str):
                entry["blob"] = item["blob"]
            else:
                continue
            contents.append(entry)
        return {"contents": contents, "_meta": {TRUST_META_KEY: "untrusted"}}
