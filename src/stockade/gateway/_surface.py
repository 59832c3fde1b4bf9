"""The MCP surface beyond tools and resources: prompts, completion, logging, and the
notifications servers send that reach the agent."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from stockade.models import ToolCall
from stockade.textsafe import safe_text

from ._chain import CallContext, ToolResult
from ._errors import DownstreamError, NamespaceError
from ._jsonrpc import INVALID_PARAMS, error_response, result_response
from ._names import split
from ._pins import reconcile_prompts
from ._prompts import (
    GET_PROMPT,
    LOG_LEVELS,
    MAX_PROMPTS,
    completion_result,
    log_notification,
    progress_notification,
    prompt_entry,
)
from ._resources import READ_TOOL, unwrap_uri
from ._ressurface import ResourceSurface
from ._state import Notify
from ._trust import TRUST_META_KEY

__all__ = ["MAX_PENDING_NOTES", "Surface"]

MAX_PENDING_NOTES = 256


class Surface(ResourceSurface):
    # -- prompts -----------------------------------------------------------------------------

    async def _prompts_list(self, client: str, modern: bool) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        for name, page in await self._each_server(client, "prompts", GET_PROMPT, "prompts/list"):
            items = page.get("prompts")
            listed = [
                p for p in (items if isinstance(items, list) else [])[:MAX_PROMPTS]
                if isinstance(p, dict)
            ]  # fmt: skip
            pinned = self._pinned_prompts(name, listed)
            known: set[str] = set()
            for prompt in listed:
                entry = prompt_entry(name, prompt) if prompt.get("name") in pinned else None
                if entry is not None:
                    known.add(prompt["name"])
                    entries.append(entry)
            self._prompt_names[name] = known
        out: dict[str, Any] = {"prompts": entries}
        if modern:
            out.update({"cacheScope": "private", "ttlMs": 0})
        return out

    def _pinned_prompts(self, server: str, listed: list[dict[str, Any]]) -> frozenset[str]:
        """The names of the listed prompts whose definition is pinned (trust-on-first-use as for
        tools); new or changed ones are hidden, pending for ``stockade tools approve``, audited
        when that changes."""
        package = self.package_identity(server)
        current = self._pins.load(server)
        rec = reconcile_prompts(current, package, listed, tofu=self.sessions[server].spec.tofu)
        changed = rec.pins != current
        if changed:
            self._pins.save(rec.pins)
        if self._save_pending(server, package, rec.pending, prompts=True) or changed:
            for ev in rec.events:
                self._audit.append("gateway.pin", {"server": server, **ev})
        return frozenset(rec.exposed)

    async def _known_prompt(self, client: str, server: str, prompt: str) -> bool:
        """Re-listed at every get: a prompt changed since it was listed is hidden at once."""
        await self._prompts_list(client, modern=False)
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
            if len(self._tasks) >= MAX_PENDING_NOTES:
                out = None  # a flooding server: dropped before any audience is worked out
            elif out is not None and self._notify_to is not None:  # only clients that may see it
                channel = functools.partial(self._notify_to, self._log_audience(server))
        elif method == "notifications/progress":
            token = params.get("progressToken")
            owner = self._progress.get(token) if isinstance(token, str) else None
            if owner is not None and owner[0] == server:
                out = progress_notification(owner[1], params)
                channel = owner[2]
        elif method == "notifications/resources/updated":
            uri = params.get("uri")
            held = self._subscriptions.get((server, uri), set()) if isinstance(uri, str) else set()
            for form in sorted({f for _, f in held}):  # the uri as each subscriber named it
                to = self._notify
                if self._notify_to is not None:  # only the clients holding it under that name
                    holders = frozenset(c for c, f in held if f == form)
                    to = functools.partial(self._notify_to, holders)
                self._send_note(to, self._updated(form))
        elif method in (
            "notifications/prompts/list_changed",
            "notifications/resources/list_changed",
        ):
            out = {"jsonrpc": "2.0", "method": method}
        if out is not None:
            self._send_note(channel or self._notify, out)

    @staticmethod
    def _updated(uri: str) -> dict[str, Any]:
        return {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": uri, "_meta": {TRUST_META_KEY: "untrusted"}},
        }

    def _log_audience(self, server: str) -> frozenset[str]:
        """The clients that may see ``server``'s log messages: those its policy could allow
        something (a tool, a resource read or a prompt) for."""
        gates = [*self._exposed.get(server, {}), READ_TOOL, GET_PROMPT]
        return frozenset(
            c for c in self.config.clients if any(self._listable(c, server, g) for g in gates)
        )

    def _send_note(self, notify: Notify | None, out: dict[str, Any]) -> None:
        if notify is None:
            return
        if len(self._tasks) >= MAX_PENDING_NOTES:
            return  # a flooding server loses notes (not the audit log's space, not memory)

        async def send(msg: dict[str, Any]) -> None:
            await notify(msg)

        task = asyncio.get_running_loop().create_task(send(out))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
