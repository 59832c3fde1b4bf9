"""The interceptor chain: composable units around the dispatch of one ``tools/call``.

An interceptor is ``async (ctx, next) -> result``. It either returns a denial result (an MCP tool
result with ``isError: true`` whose text gives the reason, so the agent's session continues) or
calls ``next``. :func:`compose` nests them in list order around a terminal handler (dispatch).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from stockade.models import Decision, ToolCall
from stockade.textsafe import safe_text

__all__ = [
    "CallContext",
    "Interceptor",
    "Next",
    "ToolResult",
    "compose",
    "deny_result",
]

ToolResult = dict[str, Any]


@dataclass
class CallContext:
    """Everything the chain learns about one call; interceptors add to it as it passes."""

    call: ToolCall
    exposed_name: str
    authenticated: bool = False
    definition: dict[str, Any] | None = None
    decision: Decision | None = None
    provenance: list[str] = field(default_factory=list)
    outcome: str = ""
    progress_token: str | int | None = None  # the agent's, when it asked for progress
    notify: Callable[[dict[str, Any]], Awaitable[None]] | None = None  # this call's own channel
    timing: dict[str, float] = field(default_factory=dict)  # seconds, see :mod:`._timing`


Next = Callable[[CallContext], Awaitable[ToolResult]]


class Interceptor(Protocol):
    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult: ...


def deny_result(ctx: CallContext, stage: str, reason: str) -> ToolResult:
    """The MCP tool error result for a denial; records the outcome on ``ctx``."""
    ctx.outcome = f"denied:{stage}"
    text = f"stockade denied {ctx.exposed_name} at {stage}: {safe_text(reason, limit=500)}"
    return {
        "content": [{"type": "text", "text": text}],
        "isError": True,
        "_meta": {"stockade/decision": "deny", "stockade/stage": stage},
    }


def compose(interceptors: Sequence[Interceptor], terminal: Next) -> Next:
    """Nest ``interceptors`` (first = outermost) around ``terminal``."""
    handler = terminal
    for icp in reversed(interceptors):
        handler = _bind(icp, handler)
    return handler


def _bind(icp: Interceptor, nxt: Next) -> Next:
    async def run(ctx: CallContext) -> ToolResult:
        return await icp(ctx, nxt)

    return run
