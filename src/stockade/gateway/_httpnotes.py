"""Which HTTP session gets a server's log message or resource update (pure; no I/O).

Over Streamable HTTP a log message or a ``notifications/resources/updated`` is not an answer to
any request, so it travels on a session's GET stream, and only to sessions that asked for it:

* a log message reaches a session that set a level (``logging/setLevel``, answered without
  error) at or below the message's level;
* a resource update reaches a session that subscribed to that URI (``resources/subscribe``,
  answered without error, not since unsubscribed), under the URI as that session named it;
* in both cases only when the session's client is among the clients the gateway addressed (the
  clients that may see that server, or that hold that subscription).

Every note is rebuilt here from its known fields only: text through ``safe_text`` (these strings
are server-controlled), ``_meta["stockade/trust"] = "untrusted"``; anything else is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stockade.textsafe import safe_text

from ._prompts import LOG_LEVELS
from ._trust import TRUST_META_KEY

__all__ = ["SessionNotes", "session_note"]

_MAX_URI = 4096
_MAX_SUBSCRIPTIONS = 1024  # per session: beyond that a subscription is not held for delivery
_LOG = "notifications/message"
_UPDATED = "notifications/resources/updated"


def session_note(msg: dict[str, Any]) -> dict[str, Any] | None:
    """A sanitised copy of a log message or resource update, or None to drop it."""
    params = msg.get("params")
    if not isinstance(params, dict):
        return None
    meta = {TRUST_META_KEY: "untrusted"}
    method = msg.get("method")
    if method == _LOG:
        level = params.get("level")
        if level not in LOG_LEVELS:
            return None
        data = params.get("data")
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=True, default=str)
        out: dict[str, Any] = {"level": level, "data": safe_text(text, limit=4000), "_meta": meta}
        if isinstance(params.get("logger"), str):
            out["logger"] = safe_text(params["logger"], single_line=True, limit=200)
        return {"jsonrpc": "2.0", "method": _LOG, "params": out}
    if method == _UPDATED:
        uri = params.get("uri")
        if not isinstance(uri, str) or not uri or len(uri) > _MAX_URI:
            return None
        return {"jsonrpc": "2.0", "method": _UPDATED, "params": {"uri": uri, "_meta": meta}}
    return None


class SessionNotes:
    """Per HTTP session: the log level it set and the URIs it subscribed to."""

    def __init__(self) -> None:
        self._levels: dict[str, str] = {}
        self._subscribed: dict[str, set[str]] = {}

    def ask(self, sid: str, msg: dict[str, Any]) -> Callable[[dict[str, Any] | None], None]:
        """Record what a session's request asks for *before* it is handled (a server may answer
        and notify at once); call the result with the answer: a refusal undoes the record."""
        method = msg.get("method")
        params = msg.get("params")
        key = "level" if method == "logging/setLevel" else "uri"
        value = params.get(key) if isinstance(params, dict) else None
        if not isinstance(value, str):
            return _nothing
        held = self._subscribed.setdefault(sid, set())
        if method == "logging/setLevel" and value in LOG_LEVELS:
            before = self._levels.get(sid)
            self._levels[sid] = value

            def settle_level(resp: dict[str, Any] | None) -> None:
                if not _ok(resp) and self._levels.get(sid) == value:
                    if before is None:
                        self._levels.pop(sid, None)
                    else:
                        self._levels[sid] = before

            return settle_level
        if method == "resources/subscribe" and len(value) <= _MAX_URI and value not in held:
            if len(held) >= _MAX_SUBSCRIPTIONS:
                return _nothing
            held.add(value)
            return lambda resp: None if _ok(resp) else held.discard(value)
        if method == "resources/unsubscribe":
            return lambda resp: held.discard(value) if _ok(resp) else None
        return _nothing

    def forget(self, sid: str) -> None:
        self._levels.pop(sid, None)
        self._subscribed.pop(sid, None)

    def wants(self, sid: str, note: dict[str, Any]) -> bool:
        """Whether session ``sid`` asked for ``note`` (a :func:`session_note` result)."""
        params = note["params"]
        if note["method"] == _LOG:
            level = self._levels.get(sid)
            return level is not None and LOG_LEVELS.index(params["level"]) >= LOG_LEVELS.index(
                level
            )
        return params["uri"] in self._subscribed.get(sid, ())


def _ok(resp: dict[str, Any] | None) -> bool:
    return resp is not None and "result" in resp and "error" not in resp


def _nothing(resp: dict[str, Any] | None) -> None:
    return None
