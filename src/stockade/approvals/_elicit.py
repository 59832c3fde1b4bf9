"""MCP elicitation as an approval channel (pure): which mode may ask, the request, the answer.

- A client declares ``capabilities.elicitation``: ``{}`` (older clients) means form mode only;
  ``{"form": {}, "url": {}}`` lists the modes (2025-11-25).
- **Form mode** answers come from the agent's own client, not a proven human: they may approve
  only categories outside :data:`OPERATOR_ONLY`; for exfiltration, credentials, financial and
  permission-grant actions only **URL mode** counts, pointing at stockade's own approval page,
  where the operator logs in. The URL carries no capability (no token; it only names the request).
  A URL-mode response itself decides nothing: the decision arrives through the page.
- The policy decides which channels a category may use (``allowed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote

from stockade.errors import ApprovalError
from stockade.textsafe import safe_text

from ._machine import OPERATOR_ONLY, ApprovalRequest, Event

__all__ = [
    "ElicitMode",
    "choose_mode",
    "client_modes",
    "form_answer",
    "form_request",
    "url_request",
]

ElicitMode = Literal["form", "url"]


def client_modes(capabilities: Mapping[str, Any] | None) -> frozenset[ElicitMode]:
    """The elicitation modes a client declared in ``initialize``."""
    el = (capabilities or {}).get("elicitation")
    if not isinstance(el, dict):
        return frozenset()
    modes: set[ElicitMode] = set()
    if "form" in el or not el:
        modes.add("form")
    if "url" in el:
        modes.add("url")
    return frozenset(modes)


def choose_mode(
    request: ApprovalRequest,
    modes: frozenset[ElicitMode],
    allowed: frozenset[ElicitMode],
) -> ElicitMode | None:
    """URL mode when the client and policy allow it; form mode only for non-operator-only
    categories; ``None`` when elicitation cannot decide this request."""
    usable = modes & allowed
    if "url" in usable:
        return "url"
    if "form" in usable and request.category not in OPERATOR_ONLY:
        return "form"
    return None


def _summary(request: ApprovalRequest) -> str:
    call = request.call
    if call.tool == "resources/read":  # the gateway's names for a resource read, a prompt get
        action = f"resource {call.arguments.get('uri')!s:.200} of {call.server} may be read"
    elif call.tool == "prompts/get":
        action = f"prompt {call.server}__{call.arguments.get('name')!s:.100} may be fetched"
    else:
        action = f"{call.server}__{call.tool} may run"
    return safe_text(
        f"stockade asks whether {action} ({request.category.value}: {request.reason})",
        single_line=True,
        limit=500,
    )


def form_request(request: ApprovalRequest) -> dict[str, Any]:
    if request.category in OPERATOR_ONLY:
        raise ApprovalError(
            f"a {request.category.value} action cannot be approved through form elicitation",
            "use URL mode (the approval page) or another operator channel",
        )
    return {
        "mode": "form",
        "message": _summary(request),
        "requestedSchema": {
            "type": "object",
            "properties": {
                "approve": {"type": "boolean", "title": "Allow this call", "default": False}
            },
            "required": ["approve"],
        },
    }


def url_request(request: ApprovalRequest, page_url: str, elicitation_id: str) -> dict[str, Any]:
    """Points the user at the approval page; the URL names the request, grants nothing."""
    base = page_url.rstrip("/")
    return {
        "mode": "url",
        "message": _summary(request) + " Log in to the stockade approval page to decide.",
        "url": f"{base}/#req-{quote(request.id, safe='')}",
        "elicitationId": elicitation_id,
    }


def form_answer(
    request: ApprovalRequest, response: Mapping[str, Any], *, client: str, now: datetime
) -> Event:
    """The event a form-mode response amounts to: approve only on an explicit ``true``; anything
    else (decline, cancel, missing or malformed content) denies. The state machine refuses the
    approve for operator-only categories."""
    content = response.get("content")
    yes = (
        response.get("action") == "accept"
        and isinstance(content, dict)
        and content.get("approve") is True
    )
    action = safe_text(str(response.get("action")), single_line=True, limit=20)
    return Event(
        kind="approve" if yes else "deny",
        by=f"client:{client}",
        channel="elicitation",
        at=now,
        reason=f"form elicitation: {action}",
    )
