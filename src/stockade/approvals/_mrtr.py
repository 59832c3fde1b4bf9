"""The 2026-07-28 input-required flow (multi round-trip requests) for approvals (pure).

Instead of holding a stream open, the gateway answers a ``tools/call`` that needs approval with::

    {"resultType": "input_required",
     "inputRequests": {"stockade_approval": {"method": "elicitation/create", "params": {...}}},
     "requestState": "<opaque>"}

and the client retries the same ``tools/call`` with ``inputResponses`` and the ``requestState``
echoed back. The state is attacker-controlled on the way back, so it is **integrity-protected**:
an HMAC-SHA256 (operator key) over the request id, the bound call digest, the client, the mode asked
and an expiry. Opening it checks the MAC in constant time, the expiry, that the retried call binds
to the same digest and comes from the same client, so a state can never be moved to another call,
session, policy or client; the mode it was sealed with says how the answer is read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from stockade.errors import ApprovalError

from ._elicit import ElicitMode, form_answer, form_request, url_request
from ._machine import ApprovalRequest, Event

__all__ = ["INPUT_KEY", "RequestStateCodec", "Sealed", "input_required", "retry_event"]

INPUT_KEY = "stockade_approval"
_MAX_STATE = 4096


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Sealed(NamedTuple):
    """What an intact ``requestState`` names: the request, and the mode its question was in."""

    request_id: str
    mode: ElicitMode


class RequestStateCodec:
    """Seals and opens ``requestState`` with an operator key (at least 32 bytes)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ApprovalError(
                f"request-state key is {len(key)} bytes, expected at least 32",
                "store 32+ random bytes in the secret store",
            )
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(
            self._key, b"stockade.requestState.v1\x00" + payload, hashlib.sha256
        ).digest()

    def seal(self, request: ApprovalRequest, mode: ElicitMode) -> str:
        payload = json.dumps(
            {
                "id": request.id,
                "digest": request.digest,
                "client": request.call.client,
                "mode": mode,
                "exp": request.expires_at.isoformat(),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return _b64(payload) + "." + _b64(self._mac(payload))

    def open(self, state: object, *, digest: str, client: str, now: datetime) -> Sealed:
        """What ``state`` names; raises unless intact, current, for ``digest`` and ``client``."""
        bad = ApprovalError(
            "requestState is missing, malformed or was altered",
            "the client must echo requestState verbatim; the call is denied",
        )
        if not isinstance(state, str) or len(state) > _MAX_STATE or state.count(".") != 1:
            raise bad
        body, _, mac = state.partition(".")
        try:
            payload, tag = _unb64(body), _unb64(mac)
        except ValueError:
            raise bad from None
        # Canonical encoding only: base64 ignores some trailing bits, and an altered state must
        # never open, even one that decodes to the same bytes.
        if _b64(payload) != body or _b64(tag) != mac:
            raise bad
        if not hmac.compare_digest(tag, self._mac(payload)):
            raise bad
        data = json.loads(payload)
        if now >= datetime.fromisoformat(data["exp"]).astimezone(UTC):
            raise ApprovalError("requestState has expired", "the agent may ask again")
        if not hmac.compare_digest(str(data["digest"]), digest):
            raise ApprovalError(
                "requestState belongs to a different call (server, image, tool, arguments, "
                "policy or session changed)",
                "the call is denied; the agent may ask again",
            )
        if not hmac.compare_digest(str(data["client"]).encode(), client.encode()):
            raise ApprovalError(
                "requestState was issued to another client",
                "the call is denied; a client may only answer its own questions",
            )
        if data["mode"] == "url":
            return Sealed(str(data["id"]), "url")
        if data["mode"] == "form":
            return Sealed(str(data["id"]), "form")
        raise bad


def input_required(
    request: ApprovalRequest,
    *,
    mode: ElicitMode,
    codec: RequestStateCodec,
    page_url: str = "",
    elicitation_id: str = "",
) -> dict[str, Any]:
    """The ``input_required`` result asking the client (form) or the operator page (URL)."""
    params = (
        form_request(request)
        if mode == "form"
        else url_request(request, page_url, elicitation_id or request.id)
    )
    return {
        "resultType": "input_required",
        "inputRequests": {INPUT_KEY: {"method": "elicitation/create", "params": params}},
        "requestState": codec.seal(request, mode),
    }


def retry_event(
    request: ApprovalRequest,
    params: Mapping[str, Any],
    *,
    mode: ElicitMode,
    client: str,
    now: datetime,
) -> Event | None:
    """What a retried ``tools/call`` (already matched to ``request`` through ``open``) decides:
    a form answer's event, or ``None`` in URL mode (the operator decides on the page)."""
    if mode == "url":
        return None
    responses = params.get("inputResponses")
    answer = responses.get(INPUT_KEY) if isinstance(responses, Mapping) else None
    return form_answer(
        request, answer if isinstance(answer, Mapping) else {}, client=client, now=now
    )
