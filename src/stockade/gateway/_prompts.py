"""Prompts, completion, logging and progress: the pure shaping of what servers send the agent.

A prompt is server-written text: listing shows it under its namespaced name
(``<server>__<prompt>``) with its description and argument names through ``safe_text``; getting it
is decided like a tool call named ``prompts/get`` on that server (``arguments = {"name": <prompt>,
"arguments": {...}}``), and the messages it returns are untrusted content (sanitised, wrapped in
the untrusted envelope, bounded, ``_meta["stockade/trust"] = "untrusted"``). Completion values,
log messages and progress messages from a server are untrusted strings too: sanitised, bounded.
"""

from __future__ import annotations

import json
from typing import Any

from stockade.textsafe import safe_text

from ._chain import CallContext, ToolResult
from ._names import qualify
from ._trust import TRUST_META_KEY, _clean
from ._untrusted import UntrustedOutput, envelope

__all__ = [
    "GET_PROMPT",
    "LOG_LEVELS",
    "PromptOutput",
    "completion_result",
    "log_notification",
    "progress_notification",
    "prompt_entry",
]

GET_PROMPT = "prompts/get"
LOG_LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
MAX_PROMPTS = 1000
MAX_COMPLETIONS = 100  # the protocol's own cap on values per completion


def prompt_entry(server: str, prompt: dict[str, Any]) -> dict[str, Any] | None:
    """The agent's view of one listed prompt, or None when the server sent nonsense."""
    name = prompt.get("name")
    if not isinstance(name, str) or not name or len(name) > 200:
        return None
    out: dict[str, Any] = {"name": qualify(server, name)}
    for key in ("title", "description"):
        if isinstance(prompt.get(key), str):
            out[key] = safe_text(prompt[key], limit=1000)
    args_in = prompt.get("arguments")
    args: list[dict[str, Any]] = []
    for arg in args_in if isinstance(args_in, list) else []:
        if not isinstance(arg, dict) or not isinstance(arg.get("name"), str):
            continue
        entry: dict[str, Any] = {"name": safe_text(arg["name"], single_line=True, limit=100)}
        if isinstance(arg.get("description"), str):
            entry["description"] = safe_text(arg["description"], limit=500)
        if isinstance(arg.get("required"), bool):
            entry["required"] = arg["required"]
        args.append(entry)
    if args:
        out["arguments"] = args
    return out


def _content(block: Any, source: str, budget: int) -> tuple[dict[str, Any] | None, int]:
    if not isinstance(block, dict):
        return None, budget
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        text = _clean(block["text"], max(budget, 0))
        return {"type": "text", "text": envelope(text, source)}, budget - len(text)
    if kind in ("image", "audio") and isinstance(block.get("data"), str):
        mime = safe_text(str(block.get("mimeType", "")), single_line=True, limit=100)
        return {"type": kind, "data": block["data"], "mimeType": mime}, budget
    if kind == "resource" and isinstance(block.get("resource"), dict):
        res = block["resource"]
        text = res.get("text")
        if isinstance(text, str):
            clean = _clean(text, max(budget, 0))
            return {"type": "text", "text": envelope(clean, source)}, budget - len(clean)
    return None, budget  # unknown or unusable blocks are dropped


class PromptOutput(UntrustedOutput):
    """Shapes a ``prompts/get`` result: every message's content is untrusted; taints the context."""

    def shape(self, ctx: CallContext, raw: dict[str, Any]) -> ToolResult:
        budget = self.limit
        messages: list[dict[str, Any]] = []
        dropped = 0
        items = raw.get("messages")
        for msg in (items if isinstance(items, list) else [])[:MAX_PROMPTS]:
            role = msg.get("role") if isinstance(msg, dict) else None
            if role not in ("user", "assistant"):
                dropped += 1
                continue
            content, budget = _content(msg.get("content"), ctx.exposed_name, budget)
            if content is None:
                dropped += 1
                continue
            messages.append({"role": role, "content": content})
        out: dict[str, Any] = {"messages": messages, "_meta": {TRUST_META_KEY: "untrusted"}}
        if isinstance(raw.get("description"), str):
            out["description"] = safe_text(raw["description"], limit=1000)
        if dropped:
            out["_meta"]["stockade/dropped"] = dropped
        return out


def completion_result(raw: dict[str, Any]) -> dict[str, Any]:
    """A server's completion, its values sanitised single-line strings, at most 100."""
    comp = raw.get("completion")
    comp = comp if isinstance(comp, dict) else {}
    values_in = comp.get("values")
    strings = [v for v in values_in if isinstance(v, str)] if isinstance(values_in, list) else []
    values = [safe_text(v, single_line=True, limit=200) for v in strings[:MAX_COMPLETIONS]]
    out: dict[str, Any] = {"values": values}
    total = comp.get("total")
    if isinstance(total, int) and not isinstance(total, bool) and total >= 0:
        out["total"] = total
    if isinstance(comp.get("hasMore"), bool):
        out["hasMore"] = comp["hasMore"]
    return {"completion": out, "_meta": {TRUST_META_KEY: "untrusted"}}


def log_notification(server: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """A server's ``notifications/message`` as the agent receives it, or None to drop it."""
    level = params.get("level")
    if level not in LOG_LEVELS:
        return None
    data = params.get("data")
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=True, default=str)
    logger = params.get("logger")
    name = server if not isinstance(logger, str) else f"{server}/{logger}"
    return {
        "jsonrpc": "2.0",
        "method": "notifications/message",
        "params": {
            "level": level,
            "logger": safe_text(name, single_line=True, limit=200),
            "data": safe_text(text, limit=4000),
            "_meta": {TRUST_META_KEY: "untrusted"},
        },
    }


def progress_notification(token: str | int, params: dict[str, Any]) -> dict[str, Any] | None:
    """A server's progress re-addressed to the agent's own token, or None to drop it."""
    progress = params.get("progress")
    if not isinstance(progress, (int, float)) or isinstance(progress, bool):
        return None
    out: dict[str, Any] = {"progressToken": token, "progress": progress}
    total = params.get("total")
    if isinstance(total, (int, float)) and not isinstance(total, bool):
        out["total"] = total
    if isinstance(params.get("message"), str):
        out["message"] = safe_text(params["message"], single_line=True, limit=500)
    return {"jsonrpc": "2.0", "method": "notifications/progress", "params": out}
