"""The MCP surface beyond tools: resources (list, read, templates, subscriptions), prompts,
completion and logging, and the notifications servers send that reach the agent."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from stockade.models import ToolCall
from stockade.textsafe import safe_text

from ._chain import CallContext, ToolResult
from ._errors import DownstreamError, NamespaceError
from ._interceptors import DecisionContext
from ._jsonrpc import INVALID_PARAMS, error_response, result_response
from ._lifecycle import ServerLifecycle
from ._names import split
from ._prompts import (
    GET_PROMPT,
    LOG_LEVELS,
    MAX_PROMPTS,
    completion_result,
    log_notification,
    progress_notification,
    prompt_entry,
)
from ._resources import READ_TOOL, SCHEME, list_entry, unwrap_uri, wrap_uri
from ._state import Notify

__all__ = ["MAX_PENDING_NOTES", "Surface"]

MAX_PENDING_NOTES = 256


class Surface(ServerLifecycle):
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

    # -- prompts -----------------------------------------------------------------------------

    async def _prompts_list(self, client: str, modern: bool) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        for name, page in await self._each_server(client, "prompts", GET_PROMPT, "prompts/list"):
            items = page.get("prompts")
            known: set[str] = set()
            for prompt in (items if isinstance(items, list) else [])[:MAX_PROMPTS]:
                entry = prompt_entry(name, prompt) if isinstance(prompt, dict) else None
                if entry is not None:
                    known.add(prompt["name"])
                    entries.append(entry)
            self._prompt_names[name] = known
        out: dict[str, Any] = {"prompts": entries}
        if modern:
            out.update({"cacheScope": "private", "ttlMs": 0})
        return out

    async def _known_prompt(self, client: str, server: str, prompt: str) -> bool:
        if prompt not in self._prompt_names.get(server, set()):
            await self._prompts_list(client, modern=False)  # the server may have added it
        return prompt in self._prompt_names.get(server, set())

    async def _prompts_get(self, rid: Any, params: dict[str, Any], client: str) -> dict[str, Any]:
        name, args = params.get("name"), params.get("arguments", {})
        if (
            not isinstance(name, str)
            or not isinstance(args, dict)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in args.items())
        ):
            return error_response(
                rid, INVALID_PARAMS, "prompts/get needs a string name and string arguments"
            )
        try:
            server, prompt = split(name)
        except NamespaceError as e:
            return error_response(rid, INVALID_PARAMS, e.what)
        if server not in self.sessions or not await self._known_prompt(client, server, prompt):
            return error_response(
                rid, INVALID_PARAMS, f"unknown prompt {safe_text(name, limit=100)}"
            )
        meta = params.get("_meta") if isinstance(params.get("_meta"), dict) else {}
        conversation = meta.get("stockade/conversation", "") if meta else ""
        call = ToolCall(
            server=server,
            tool=GET_PROMPT,
            arguments={"name": prompt, "arguments": args},
            client=client,
            session=str(conversation)[:128],
        )
        result = await self._prompt_chain(CallContext(call=call, exposed_name=f"prompt:{name}"))
        if result.get("isError"):
            content = result.get("content") or [{"text": "denied"}]
            return error_response(rid, INVALID_PARAMS, str(content[0].get("text", "denied")))
        return result_response(rid, result)

    async def _dispatch_prompt(self, ctx: CallContext) -> ToolResult:
        session = self.sessions[ctx.call.server]
        try:
            return await session.request(
                "prompts/get", dict(ctx.call.arguments), timeout_s=session.spec.call_timeout_s
            )
        except DownstreamError as e:
            ctx.outcome = "downstream-error"
            return {"content": [{"text": f"stockade: {e.what}"}], "isError": True}

    # -- completion and logging ----------------------------------------------------------------

    async def _complete(self, rid: Any, params: dict[str, Any], client: str) -> dict[str, Any]:
        """Completion of a prompt's (or a resource template's) argument; allowed for what the
        client may list: a prompt the policy lets it get, a resource the policy lets it read."""
        ref, argument = params.get("ref"), params.get("argument")
        if not isinstance(ref, dict) or not isinstance(argument, dict):
            return error_response(rid, INVALID_PARAMS, "completion/complete needs ref and argument")
        arg_name, arg_value = argument.get("name"), argument.get("value")
        if not isinstance(arg_name, str) or not isinstance(arg_value, str):
            return error_response(rid, INVALID_PARAMS, "completion argument needs name and value")
        try:
            if ref.get("type") == "ref/prompt" and isinstance(ref.get("name"), str):
                server, original = split(ref["name"])
                gate, down_ref = GET_PROMPT, {"type": "ref/prompt", "name": original}
                known = server in self.sessions and await self._known_prompt(
                    client, server, original
                )
            elif ref.get("type") == "ref/resource" and isinstance(ref.get("uri"), str):
                server, original = unwrap_uri(ref["uri"])
                gate, down_ref = READ_TOOL, {"type": "ref/resource", "uri": original}
                known = server in self.sessions
            else:
                return error_response(rid, INVALID_PARAMS, "unknown completion ref type")
        except NamespaceError as e:
            return error_response(rid, INVALID_PARAMS, e.what)
        if not known or not self._listable(client, server, gate):
            return error_response(rid, INVALID_PARAMS, "completion refused: unknown or not allowed")
        session = self.sessions[server]
        if not session.running or "completions" not in session.capabilities:
            return result_response(rid, {"completion": {"values": []}})
        down: dict[str, Any] = {"ref": down_ref, "argument": {"name": arg_name, "value": arg_value}}
        context = params.get("context")
        if isinstance(context, dict) and isinstance(context.get("arguments"), dict):
            given = context["arguments"]
            down["context"] = {
                "arguments": {
                    k: v for k, v in given.items() if isinstance(k, str) and isinstance(v, str)
                }
            }
        self._audit.append(
            "gateway.complete", {"client": client, "server": server, "ref": down_ref}
        )
        try:
            raw = await session.request(
                "completion/complete", down, timeout_s=session.spec.call_timeout_s
            )
        except DownstreamError as e:
            return error_response(rid, INVALID_PARAMS, f"stockade: {e.what}")
        return result_response(rid, completion_result(raw))

    async def _set_level(self, rid: Any, params: dict[str, Any], client: str) -> dict[str, Any]:
        """Forwarded to every running server that logs; what they send back is untrusted."""
        level = params.get("level")
        if level not in LOG_LEVELS:
            return error_response(
                rid, INVALID_PARAMS, f"level must be one of {', '.join(LOG_LEVELS)}"
            )
        self._audit.append("gateway.log_level", {"client": client, "level": level})
        for name in sorted(self.sessions):
            session = self.sessions[name]
            if not session.running or "logging" not in session.capabilities:
                continue
            try:
                await session.request(
                    "logging/setLevel", {"level": level}, timeout_s=session.spec.call_timeout_s
                )
            except DownstreamError as e:
                self._audit.append("gateway.server_failed", {"server": name, "error": e.what})
        return result_response(rid, {})

    # -- notifications from servers ----------------------------------------------------------

    def _server_notification(self, server: str, method: str, params: dict[str, Any]) -> None:
        """What a server may tell the agent: sanitised logs, its progress on the agent's own
        calls, updates of resources the agent subscribed to, and list changes. Nothing else."""
        out: dict[str, Any] | None = None
        channel: Notify | None = None  # a call's own channel (an HTTP SSE answer), else the agent's
        if method == "notifications/message":
            out = log_notification(server, params)
        elif method == "notifications/progress":
            token = params.get("progressToken")
            owner = self._progress.get(token) if isinstance(token, str) else None
            if owner is not None and owner[0] == server:
                out = progress_notification(owner[1], params)
                channel = owner[2]
        elif method == "notifications/resources/updated":
            uri = params.get("uri")
            if isinstance(uri, str) and (server, uri) in self._subscriptions:
                out = {
                    "jsonrpc": "2.0",
                    "method": method,
                    "params": {"uri": wrap_uri(server, uri)},
                }
        elif method in (
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
        ):
            out = {"jsonrpc": "2.0", "method": method}
        notify = channel or self._notify
        if out is None or notify is None:
            return
        if len(self._tasks) >= MAX_PENDING_NOTES:
            return  # a flooding server loses notes (not the audit log's space, not memory)

        async def send(msg: dict[str, Any]) -> None:
            await notify(msg)

        task = asyncio.get_running_loop().create_task(send(out))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
