"""The gateway's own tools for the host: registering a trusted context, the run trace."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stockade.textsafe import safe_text

from ._chain import ToolResult
from ._state import GatewayState
from ._taint import ContextKey

__all__ = ["MAX_REGISTER_FAILURES", "HostTools"]

MAX_REGISTER_FAILURES = 10  # per client, then registration is refused until restart


class HostTools(GatewayState):
    _traces: Callable[[], dict[str, Any]] | None
    _register_failures: dict[str, int]

    def _trace(self, client: str) -> ToolResult:
        assert self._traces is not None  # noqa: S101 - checked by the caller
        traces = self._traces()
        self._audit.append("gateway.trace", {"client": client, "servers": sorted(traces)})
        body = json.dumps(traces, indent=1, sort_keys=True, ensure_ascii=True, default=str)
        return {
            "content": [{"type": "text", "text": safe_text(body)}],
            "structuredContent": {"servers": traces},
            "isError": False,
        }

    def _register(self, client: str, args: dict[str, Any]) -> ToolResult:
        conv, instr, cred = (
            args.get("conversation"),
            args.get("instruction"),
            args.get("credential"),
        )
        locked = self._register_failures.get(client, 0) >= MAX_REGISTER_FAILURES
        ok = (
            not locked
            and isinstance(conv, str)
            and isinstance(instr, str)
            and isinstance(cred, str)
            and self.taint.register(ContextKey(client=client, conversation=conv), instr, cred)
        )
        if not ok:
            self._register_failures[client] = self._register_failures.get(client, 0) + 1
        self._audit.append(
            "gateway.register_context",
            {"client": client, "conversation": str(conv)[:128], "ok": ok, "locked": locked},
        )
        if not ok:
            return {"content": [{"type": "text", "text": "registration refused"}], "isError": True}
        return {"content": [{"type": "text", "text": "registered"}], "isError": False}
