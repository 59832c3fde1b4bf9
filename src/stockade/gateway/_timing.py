"""How long a tool call spends in the gateway itself: the latency overhead metric.

:class:`CallTimer` (just inside the audit step) measures the whole chain, :func:`timed_terminal`
the downstream server's share (dispatch and the wait for its answer), :class:`Timed` the share of
one interceptor without its continuation (the approval step: waiting for a human). The overhead is
the total minus those two. Times come from an injected monotonic clock, never the wall clock, and
land on :attr:`CallContext.timing`, which the audit step stores with the call's decision evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ._chain import CallContext, Interceptor, Next, ToolResult

__all__ = ["APPROVAL", "DOWNSTREAM", "OVERHEAD", "TOTAL", "CallTimer", "Timed", "timed_terminal"]

Monotonic = Callable[[], float]

TOTAL = "total_s"
DOWNSTREAM = "downstream_s"
APPROVAL = "approval_s"
OVERHEAD = "overhead_s"


def _add(ctx: CallContext, slot: str, seconds: float) -> None:
    ctx.timing[slot] = ctx.timing.get(slot, 0.0) + max(seconds, 0.0)


@dataclass
class CallTimer:
    """Measures the chain inside it and derives the gateway's own overhead."""

    monotonic: Monotonic

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        start = self.monotonic()
        try:
            return await nxt(ctx)
        finally:
            total = max(self.monotonic() - start, 0.0)
            waited = ctx.timing.get(DOWNSTREAM, 0.0) + ctx.timing.get(APPROVAL, 0.0)
            ctx.timing[TOTAL] = total
            ctx.timing.setdefault(DOWNSTREAM, 0.0)
            ctx.timing.setdefault(APPROVAL, 0.0)
            ctx.timing[OVERHEAD] = max(total - waited, 0.0)


@dataclass
class Timed:
    """Wraps an interceptor: its own time, without the rest of the chain, goes to ``slot``."""

    inner: Interceptor
    slot: str
    monotonic: Monotonic

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        downstream = 0.0

        async def timed_next(c: CallContext) -> ToolResult:
            nonlocal downstream
            t = self.monotonic()
            try:
                return await nxt(c)
            finally:
                downstream += self.monotonic() - t

        start = self.monotonic()
        try:
            return await self.inner(ctx, timed_next)
        finally:
            _add(ctx, self.slot, self.monotonic() - start - downstream)


def timed_terminal(terminal: Next, monotonic: Monotonic) -> Next:
    """The terminal handler (dispatch to the downstream server), its time in ``downstream_s``."""

    async def run(ctx: CallContext) -> ToolResult:
        start = monotonic()
        try:
            return await terminal(ctx)
        finally:
            _add(ctx, DOWNSTREAM, monotonic() - start)

    return run
