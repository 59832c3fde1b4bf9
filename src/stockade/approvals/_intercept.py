"""Docker MCP Gateway exec interceptors (pure core; the CLI does stdin/stdout).

The contract implemented (Docker's ``docker mcp gateway run --interceptor when:exec:COMMAND``):

- only ``tools/call`` is intercepted; COMMAND runs under ``/bin/sh -c`` once per call;
- **before**: stdin is ``{"method": "tools/call", "params": {"name": ..., "arguments": {...}}}``.
  Empty (whitespace-only) stdout lets the call proceed; any other stdout is parsed as an MCP
  ``CallToolResult`` that is returned *instead of* calling the tool. A non-zero exit fails the call.
- **after**: stdin is the tool's ``CallToolResult`` as JSON; non-empty stdout replaces it.

The params name no server, so the interceptor is told which policy server it guards
(``--server``). Fail closed: anything but a clean ``allow`` (malformed input, unknown method, a
policy error, an approver error or timeout) answers with an ``isError`` result, never empty output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from stockade.errors import StockadeError
from stockade.models import Approver, Decision, ToolCall
from stockade.textsafe import safe_text

from ._errors import InterceptError

__all__ = ["MAX_PAYLOAD", "after", "before", "error_result", "parse_before"]

MAX_PAYLOAD = 4 * 1024 * 1024


def error_result(text: str) -> bytes:
    """A ``CallToolResult`` with ``isError: true`` carrying ``text`` (what the agent sees)."""
    body = {
        "content": [{"type": "text", "text": safe_text(text, single_line=True, limit=1000)}],
        "isError": True,
    }
    return json.dumps(body).encode() + b"\n"


def _load(payload: bytes) -> Any:
    if len(payload) > MAX_PAYLOAD:
        raise InterceptError(
            f"interceptor input is {len(payload)} bytes, more than {MAX_PAYLOAD}",
            "the call is refused; large arguments cannot be reviewed",
        )
    try:
        return json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InterceptError(f"interceptor input is not JSON: {e}", "check the gateway") from e


def parse_before(payload: bytes, *, server: str, client: str) -> ToolCall:
    doc = _load(payload)
    if not isinstance(doc, dict) or doc.get("method") != "tools/call":
        raise InterceptError(
            "interceptor input is not a tools/call message",
            "install stockade as a before:exec interceptor",
        )
    params = doc.get("params")
    if not isinstance(params, dict) or not isinstance(params.get("name"), str):
        raise InterceptError("tools/call params carry no tool name", "check the gateway")
    arguments = params.get("arguments") or {}
    if not isinstance(arguments, dict):
        raise InterceptError("tools/call arguments are not an object", "check the gateway")
    try:
        return ToolCall(server=server, tool=params["name"], arguments=arguments, client=client)
    except ValidationError as e:
        raise InterceptError(
            f"invalid tools/call: {e.errors()[0]['msg']}", "check the gateway"
        ) from e


def before(
    payload: bytes,
    *,
    server: str,
    client: str,
    decide: Callable[[ToolCall], Decision],
    approver: Approver | None,
) -> tuple[bytes, Decision]:
    """Empty output (proceed) only for an allow; otherwise an error result. Also the decision."""
    try:
        call = parse_before(payload, server=server, client=client)
        decision = decide(call)
        if decision.kind == "require_approval":
            if approver is None:
                decision = Decision.deny(
                    f"approval required ({decision.reason}) and no approver configured",
                    rule="intercept",
                )
            else:
                decision = approver.decide(call, decision)
    except StockadeError as e:
        decision = Decision.deny(f"stockade interceptor failed: {e.what}", rule="intercept")
    if decision.kind == "allow":
        return b"", decision
    return error_result(f"stockade denied this call: {decision.reason}"), decision


def after(payload: bytes) -> bytes:
    """The tool's result with every text neutralised and marked untrusted (error on bad input)."""
    try:
        doc = _load(payload)
    except InterceptError as e:
        return error_result(f"stockade could not read the tool result: {e.what}")
    if not isinstance(doc, dict) or not isinstance(doc.get("content", []), list):
        return error_result("stockade could not read the tool result: not a CallToolResult")
    content = []
    for item in doc.get("content", []):
        if isinstance(item, dict) and item.get("type") == "text":
            content.append({**item, "text": safe_text(str(item.get("text", "")))})
        else:
            content.append(item)
    raw_meta = doc.get("_meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    out = {**doc, "content": content, "_meta": {**meta, "stockade/trust": "untrusted"}}
    return json.dumps(out).encode() + b"\n"
