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
            server, original = unwrap_uri(uri)
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
            server, original = unwrap_uri(uri)
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
        try:
            await session.request(method, {"uri": original}, timeout_s=session.spec.call_timeout_s)
        except DownstreamError as e:
            return error_response(rid, INVALID_PARAMS, f"stockade: {e.what}")
        if method == "resources/subscribe":
            self._subscriptions.add((server, original))
        else:
            self._subscriptions.discard((server, original))
        return result_response(rid, {})
