"""The shared shape of a stage that turns a downstream result into untrusted content.

Prompts (``prompts/get``) and resources (``resources/read``) both: await the downstream answer,
taint the calling context, pass errors through unchanged, and wrap every text they keep in the
``<untrusted-tool-output>`` envelope. Only what they keep from the answer differs
(:meth:`UntrustedOutput.shape`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from ._chain import CallContext, Next, ToolResult
from ._taint import ContextKey, TaintTracker
from ._trust import _CLOSE, _OPEN

__all__ = ["UntrustedOutput", "envelope"]


def envelope(text: str, source: str) -> str:
    """``text`` (already cleaned) inside the untrusted envelope naming ``source``."""
    return f"{_OPEN.format(source=source)}\n{text}\n{_CLOSE}"


class UntrustedOutput(ABC):
    """A chain stage: taint the context, pass errors through, shape the rest with ``shape``."""

    def __init__(self, taint: TaintTracker, limit: int = 65536) -> None:
        self.taint = taint
        self.limit = limit

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        raw = await nxt(ctx)
        key = ContextKey(client=ctx.call.client, conversation=ctx.call.session)
        self.taint.mark_tainted(key, ctx.exposed_name, server=ctx.call.server)
        if raw.get("isError"):
            ctx.outcome = ctx.outcome or "error"
            return raw
        ctx.outcome = ctx.outcome or "ok"
        return self.shape(ctx, raw)

    @abstractmethod
    def shape(self, ctx: CallContext, raw: dict[str, Any]) -> ToolResult:
        """The agent's copy of a successful answer ``raw``."""
