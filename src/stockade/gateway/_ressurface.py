"""The resources surface: list, read, templates and subscriptions under gateway URIs."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from stockade.models import ToolCall
from stockade.textsafe import safe_text

from ._chain import CallContext, ToolResult
from ._errors import DownstreamError, NamespaceError
from ._interceptors import DecisionContext
from ._jsonrpc import INVALID_PARAMS, error_response, result_response
from ._lifecycle import ServerLifecycle
from ._rawroute import RawUriError, ResourceOffer, route_raw_or_unlisted
from ._resources import READ_TOOL, SCHEME, list_entry, unwrap_uri

__all__ = ["ResourceSurface"]


class ResourceSurface(ServerLifecycle):
    async def _resources_list(self, client: str, modern: bool) -> dict[str, Any]:
        await self._start_lazy()
        entries: list[dict[str, Any]] = []
        for name in sorted(self.sessions):
            session = self.sessions[name]
            if not session.running or "resources" not in session.capabilities:
                continue
            if not self._listable(client, name, READ_TOOL):
                continue
            try:
                page = await session.request(
                    "resources/list", {}, timeout_s=session.spec.call_timeout_s
                )
            except DownstreamError as e:
                self._audit.append("gateway.server_failed", {"server": name, "error": e.what})
                continue
            items = page.get("resources")
            for res in (items if isinstance(items, list) else [])[:1000]:
                entry = list_entry(name, res) if isinstance(res, dict) else None
                if entry is not None:
                    entries.append(entry)
        out: dict[str, Any] = {"resources": entries}
        if modern:
            out.update({"cacheScope": "private", "ttlMs": 0})
        return out

    async def _resources_read(
        self, rid: Any, params: dict[str, Any], client: str
    ) -> dict[str, Any]:
        uri = params.get("uri")
        if not isinstance(uri, str):
            return error_response(rid, INVALID_PARAMS, "resources/read needs a string uri")
        try:
            server, original = await self._resolve_uri(uri, client, "resources/read")
        except NamespaceError as e:
            return error_response(rid, INVALID_PARAMS, e.what)
        if server not in self.sessions:
            return error_response(rid, INVALID_PARAMS, f"no server {server[:40]!r}")
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        conversation = meta.get("stockade/conversation", "") if meta else ""
        call = ToolCall(
            server=server,
            tool=READ_TOOL,
            arguments={"uri": original},
            client=client,
            session=str(conversation)[:128],
        )
        ctx = CallContext(call=call, exposed_name=f"{server}:{READ_TOOL}")
        result = await self._resource_chain(ctx)
        if result.get("isError"):
            content = result.get("content") or [{"text": "denied"}]
            return error_response(rid, INVALID_PARAMS, str(content[0].get("text", "denied")))
        return result_response(rid, result)

    async def _dispatch_resource(self, ctx: CallContext) -> ToolResult:
        session = self.sessions[ctx.call.server]
        try:
            if not session.running:
                raise DownstreamError(f"server {ctx.call.server!r} is not running", "retry later")
            return await session.request(
                "resources/read", {"uri": ctx.call.arguments["uri"]},
                timeout_s=session.spec.call_timeout_s,
            )  # fmt: skip
        except DownstreamError as e:
            ctx.outcome = "downstream-error"
            return {"content": [{"text": f"stockade: {e.what}"}], "isError": True}

    # -- resource templates and subscriptions ----------------------------------------------

    async def _templates_list(self, client: str, modern: bool) -> dict[str, Any]:
        """Templates under gateway URIs: the original template percent-encoded but for its
        ``{expressions}``, so a filled-in template unwraps to the filled-in original."""
        entries: list[dict[str, Any]] = []
        for name, page in await self._each_server(
            client, "resources", READ_TOOL, "resources/templates/list"
        ):
            items = page.get("resourceTemplates")
            for tpl in (items if isinstance(items, list) else [])[:1000]:
                raw = tpl.get("uriTemplate") if isinstance(tpl, dict) else None
                if not isinstance(raw, str) or not raw:
                    continue
                entry: dict[str, Any] = {
                    "uriTemplate": f"{SCHEME}://{name}/{quote(raw, safe='{}')}",
                    "name": safe_text(str(tpl.get("name", raw)), single_line=True, limit=200),
                }
                for key in ("title", "description"):
                    if isinstance(tpl.get(key), str):
                        entry[key] = safe_text(tpl[key], limit=1000)
                if isinstance(tpl.get("mimeType"), str):
                    entry["mimeType"] = safe_text(tpl["mimeType"], single_line=True, limit=200)
                entries.append(entry)
        out: dict[str, Any] = {"resourceTemplates": entries}
        if modern:
            out.update({"cacheScope": "private", "ttlMs": 0})
        return out

    async def _each_server(
        self, client: str, capability: str, gate: str, method: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """One page of ``method`` from every running server that advertises ``capability`` and
        whose policy could allow ``gate`` for this client; a failing server is skipped, audited."""
        await self._start_lazy()
        pages: list[tuple[str, dict[str, Any]]] = []
        for name in sorted(self.sessions):
            session = self.sessions[name]
            if not session.running or capability not in session.capabilities:
                continue
            if not self._listable(client, name, gate):
                continue
            try:
                page = await session.request(method, {}, timeout_s=session.spec.call_timeout_s)
            except DownstreamError as e:
                self._audit.append("gateway.server_failed", {"server": name, "error": e.what})
                continue
            pages.append((name, page))
        return pages

    async def _subscribe(
        self, rid: Any, params: dict[str, Any], client: str, method: str
    ) -> dict[str, Any]:
        """A subscription is allowed when the policy allows reading that resource outright (a read
        that needs approval cannot be watched)."""
        uri = params.get("uri")
        if not isinstance(uri, str):
            return error_response(rid, INVALID_PARAMS, f"{method} needs a string uri")
        try:
            server, original = await self._resolve_uri(uri, client, method)
        except NamespaceError as e:
            return error_response(rid, INVALID_PARAMS, e.what)
        session = self.sessions.get(server)
        if session is None or not session.running:
            return error_response(rid, INVALID_PARAMS, f"no running server {server[:40]!r}")
        caps = session.capabilities.get("resources")
        if not isinstance(caps, dict) or caps.get("subscribe") is not True:
            return error_response(rid, INVALID_PARAMS, f"server {server!r} has no subscriptions")
        call = ToolCall(server=server, tool=READ_TOOL, arguments={"uri": original}, client=client)
        dctx = DecisionContext(tainted=False, exposed_name=f"{server}:{READ_TOOL}")
        decision = self._decider(call, dctx)
        self._audit.append(
            "gateway.subscribe",
            {"client": client, "server": server, "uri": original[:200], "method": method,
             "decision": decision.kind},
        )  # fmt: skip
        if decision.kind != "allow":
            return error_response(
                rid,
                INVALID_PARAMS,
                f"stockade denied {method}: {safe_text(decision.reason, limit=300)}",
            )
        key = (server, original)
        holders = self._subscriptions.get(key, set())
        if method == "resources/unsubscribe":
            mine = {h for h in holders if h[0] == client}
            if not mine:
                return result_response(rid, {})  # never another client's subscription
            if holders - mine:  # others still watch it: keep the server's subscription
                self._subscriptions[key] = holders - mine
                return result_response(rid, {})
        if method == "resources/subscribe":  # held before asking: an update may follow at once
            self._subscriptions[key] = {*holders, (client, uri)}
        try:
            await session.request(method, {"uri": original}, timeout_s=session.spec.call_timeout_s)
        except DownstreamError as e:
            if method == "resources/subscribe":
                self._subscriptions[key] = self._subscriptions.get(key, set()) - {(client, uri)}
                if not self._subscriptions[key]:
                    del self._subscriptions[key]
            return error_response(rid, INVALID_PARAMS, f"stockade: {e.what}")
        if method == "resources/unsubscribe":
            self._subscriptions.pop(key, None)
        return result_response(rid, {})

    # -- raw (non-gateway) uris ------------------------------------------------------------

    async def _resolve_uri(self, uri: str, client: str, method: str) -> tuple[str, str]:
        """(server, original uri) of a gateway uri, or of a raw uri that exactly one server
        offered this client (listed, or matching one of its templates); audited either way."""
        if uri.startswith(f"{SCHEME}://"):
            return unwrap_uri(uri)
        shown = uri[:200]
        held = [k for k, holders in self._subscriptions.items() if (client, uri) in holders]
        unlisted = False
        if method == "resources/unsubscribe" and len(held) == 1:
            server = held[0][0]  # the client's own subscription, routed when it was made
        else:
            try:
                server, unlisted = route_raw_or_unlisted(
                    uri, await self._raw_offers(client), self._unlisted_servers(client)
                )
                if unlisted:
                    self._check_unlisted(server, uri)
            except RawUriError as e:
                self._audit.append(
                    "gateway.raw_uri_refused",
                    {"client": client, "uri": shown, "method": method, "reason": e.what},
                )
                raise
        self._audit.append(
            "gateway.raw_uri_routed",
            {"client": client, "uri": shown, "method": method, "server": server,
             "unlisted": unlisted},
        )  # fmt: skip
        return server, uri  # a raw uri is the server's own uri

    def _unlisted_servers(self, client: str) -> frozenset[str]:
        """Servers whose spec opts in to unlisted uris and whose policy could allow the read for
        ``client`` (counted from configuration and policy alone, so a stopped server never makes
        another one the only candidate)."""
        return frozenset(
            name
            for name, session in self.sessions.items()
            if session.spec.unlisted_uris == "route" and self._listable(client, name, READ_TOOL)
        )

    def _check_unlisted(self, server: str, uri: str) -> None:
        """The opted-in server must be running and serve resources; the read itself is still
        decided by the policy afterwards."""
        session = self.sessions.get(server)
        if session is None or not session.running or "resources" not in session.capabilities:
            shown = safe_text(uri, single_line=True, limit=80)
            raise RawUriError(
                f"unlisted resource uri {shown!r}: server {server!r} opts in but is not running "
                "or serves no resources",
                "start the server, or leave resources.unlisted_uris unset",
            )

    async def _raw_offers(self, client: str) -> dict[str, ResourceOffer]:
        """What each server whose policy could allow the read offers this client right now."""
        uris: dict[str, set[str]] = {}
        for name, page in await self._each_server(client, "resources", READ_TOOL, "resources/list"):
            items = page.get("resources")
            uris[name] = {
                r["uri"]
                for r in (items if isinstance(items, list) else [])[:1000]
                if isinstance(r, dict) and isinstance(r.get("uri"), str)
            }
        templates: dict[str, list[str]] = {}
        for name, page in await self._each_server(
            client, "resources", READ_TOOL, "resources/templates/list"
        ):
            items = page.get("resourceTemplates")
            templates[name] = [
                t["uriTemplate"]
                for t in (items if isinstance(items, list) else [])[:1000]
                if isinstance(t, dict) and isinstance(t.get("uriTemplate"), str)
            ]
        return {
            name: ResourceOffer(frozenset(uris.get(name, set())), tuple(templates.get(name, [])))
            for name in sorted(set(uris) | set(templates))
        }
