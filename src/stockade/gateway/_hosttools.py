"""The gateway's own tools for the host: registering a trusted context, the run trace."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stockade.textsafe import safe_text

from ._chain import ToolResult
from ._state import GatewayState
from ._taint import ContextKey

if TYPE_CHECKING:
    from stockade.models import Decision
    from stockade.opa import Questions

__all__ = ["MAX_REGISTER_FAILURES", "HostTools"]

MAX_REGISTER_FAILURES = 10  # per client, then registration is refused until restart


class HostTools(GatewayState):
    _traces: Callable[[], dict[str, Any]] | None
    _register_failures: dict[str, int]
    _opa: Questions | None

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
        """The host application hands the user's authority for one conversation to the agent
        client: a clean context, after its credential and (when delegated) OPA's ``delegation``."""
        conv, instr, cred = (
            args.get("conversation"),
            args.get("instruction"),
            args.get("credential"),
        )
        locked = self._register_failures.get(client, 0) >= MAX_REGISTER_FAILURES
        authentic = (
            not locked
            and isinstance(conv, str)
            and bool(conv)
            and isinstance(instr, str)
            and isinstance(cred, str)
            and self.taint.accepts(cred)
        )
        refused = self._delegation(client, str(conv), str(instr)) if authentic else None
        ok = (
            authentic
            and refused is None
            and self.taint.register(
                ContextKey(client=client, conversation=str(conv)), str(instr), str(cred)
            )
        )
        if not ok and refused is None:  # a wrong credential, not an OPA refusal, counts
            self._register_failures[client] = self._register_failures.get(client, 0) + 1
        event = {"client": client, "conversation": str(conv)[:128], "ok": ok, "locked": locked}
        if refused is not None:
            event["opa"] = {"result": refused.kind, "reason": refused.reason, "rule": refused.rule}
        self._audit.append("gateway.register_context", event)
        if refused is not None:
            text = safe_text(f"registration refused by OPA: {refused.reason}", limit=500)
            return {"content": [{"type": "text", "text": text}], "isError": True}
        if not ok:
            return {"content": [{"type": "text", "text": "registration refused"}], "isError": True}
        return {"content": [{"type": "text", "text": "registered"}], "isError": False}

    def _delegation(self, client: str, conversation: str, instruction: str) -> Decision | None:
        """OPA's ``delegation`` for a registration, when delegated: None if it allows."""
        if self._opa is None or not self._opa.delegates("delegation"):
            return None
        decision = self._opa.ask(
            "delegation",
            client=client,
            session=conversation[:128],
            extra={
                "delegate_to": client,
                "conversation": conversation[:128],
                "instruction_sha256": hashlib.sha256(instruction.encode()).hexdigest(),
                "instruction_length": len(instruction),
            },
        )
        return None if decision.kind == "allow" else decision
