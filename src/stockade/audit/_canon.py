"""Pure core: canonical bytes of an event, the hash chain and the HMAC.

Canonical form (version 1) of a JSON value: ``json.dumps(value, sort_keys=True,
separators=(",", ":"), ensure_ascii=True, allow_nan=False)`` encoded as ASCII. Keys are sorted by
code point, there is no whitespace, every non-ASCII character is a ``\\uXXXX`` escape, integers are
decimal and floats use Python's shortest round-trip form. A log line is the canonical form of the
whole event (``mac`` included) followed by one ``\\n``.

- ``mac`` = ``"hmac-sha256:" + hex(HMAC-SHA256(key, MAC_DOMAIN + canonical(event without mac)))``
- ``prev`` of the line at ``seq`` n is ``"sha256:" + hex(sha256(line n-1 without its newline))``;
  the first line (``seq`` 0) has ``prev`` = :data:`GENESIS` (``"sha256:"`` and 64 zeros).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from stockade.errors import AuditError
from stockade.models import AuditEvent

__all__ = [
    "EVENT_FIELDS",
    "GENESIS",
    "MAC_DOMAIN",
    "canonical",
    "event_mac",
    "event_to_dict",
    "line_hash",
    "seal_event",
]

GENESIS = "sha256:" + "0" * 64
MAC_DOMAIN = b"stockade-audit-event-v1\n"
EVENT_FIELDS = frozenset({"seq", "ts", "type", "run_id", "session_id", "data", "prev", "mac"})


def canonical(value: Any) -> bytes:
    """The canonical bytes of a JSON value (see the module docstring)."""
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
    except (TypeError, ValueError) as e:
        raise AuditError(
            f"audit event is not plain JSON: {e}",
            "pass only str/int/float/bool/None, lists and dicts with string keys",
        ) from e
    return text.encode("ascii")


def line_hash(line: bytes) -> str:
    """``prev`` value for the line after ``line`` (``line`` without its trailing newline)."""
    return "sha256:" + hashlib.sha256(line).hexdigest()


def event_mac(hmac_key: bytes, unsealed: Mapping[str, Any]) -> str:
    """HMAC of an event's canonical form without its ``mac`` field."""
    if "mac" in unsealed:
        raise AuditError("event_mac got an event that already has a mac", "drop 'mac' first")
    digest = hmac.new(hmac_key, MAC_DOMAIN + canonical(dict(unsealed)), hashlib.sha256)
    return "hmac-sha256:" + digest.hexdigest()


def event_to_dict(event: AuditEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "ts": event.ts,
        "type": event.type,
        "run_id": event.run_id,
        "session_id": event.session_id,
        "data": event.data,
        "prev": event.prev,
        "mac": event.mac,
    }


def seal_event(
    *,
    seq: int,
    ts: str,
    type: str,
    data: dict[str, Any],
    prev: str,
    hmac_key: bytes,
    run_id: str | None = None,
    session_id: str | None = None,
) -> tuple[AuditEvent, bytes]:
    """Build the event at ``seq`` chained to ``prev``; return it and its line (no newline)."""
    unsealed: dict[str, Any] = {
        "seq": seq,
        "ts": ts,
        "type": type,
        "run_id": run_id,
        "session_id": session_id,
        "data": data,
        "prev": prev,
    }
    body = canonical(unsealed)  # validates it is plain JSON before anything else
    unsealed["data"] = json.loads(body)["data"]  # exactly what a reader will see
    mac = event_mac(hmac_key, unsealed)
    event = AuditEvent(mac=mac, **unsealed)
    return event, canonical({**unsealed, "mac": mac})
