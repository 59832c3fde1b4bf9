"""Alert hooks: a command (argv, alert JSON on stdin) or a webhook (JSON POST), bounded in time.

Kinds: ``gate_failed`` (wired into preflight/postflight), ``server_crashed``,
``server_unreachable`` and ``kill_switch`` (for the gateway and the kill switch to fire).
A hook that fails raises :class:`AlertError`; callers report it and keep their own verdict.
"""

from __future__ import annotations

import json
import subprocess
from typing import Any, Literal, Protocol

import httpx
from pydantic import Field

from stockade.errors import StockadeError
from stockade.models import Clock, Frozen
from stockade.textsafe import safe_text

from ._urls import https_or_loopback

__all__ = ["Alert", "AlertError", "AlertHook", "CommandHook", "WebhookHook", "make_alert"]

AlertKind = Literal["gate_failed", "server_crashed", "server_unreachable", "kill_switch"]


class AlertError(StockadeError):
    """An alert hook could not deliver its alert."""


class Alert(Frozen):
    kind: AlertKind
    subject: str
    detail: str
    ts: str
    data: dict[str, Any] = Field(default_factory=dict)


def make_alert(kind: AlertKind, subject: str, detail: str, clock: Clock, **data: Any) -> Alert:
    return Alert(kind=kind, subject=subject, detail=detail, ts=clock.now().isoformat(), data=data)


class AlertHook(Protocol):
    def fire(self, alert: Alert) -> None: ...


class CommandHook:
    """Runs ``argv`` (no shell) with the alert as JSON on stdin; non-zero exit is a failure."""

    def __init__(self, argv: list[str], timeout_s: float = 10.0) -> None:
        if not argv:
            raise AlertError("empty alert command", "give the program and its arguments")
        self._argv = argv
        self._timeout = timeout_s

    def fire(self, alert: Alert) -> None:
        payload = json.dumps(alert.model_dump(mode="json")).encode()
        try:
            r = subprocess.run(  # nosec B603 - argv list from the operator, no shell
                self._argv, input=payload, capture_output=True, timeout=self._timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise AlertError(f"alert command {self._argv[0]!r} failed: {e}", "check it") from e
        if r.returncode != 0:
            err = safe_text(r.stderr.decode("utf-8", "replace")[:200])
            raise AlertError(
                f"alert command {self._argv[0]!r} exited {r.returncode}: {err}", "check it"
            )


class WebhookHook:
    """POSTs the alert as JSON to an https or loopback URL; any non-2xx answer is a failure."""

    def __init__(
        self, url: str, timeout_s: float = 5.0, transport: httpx.BaseTransport | None = None
    ) -> None:
        if not https_or_loopback(url):
            raise AlertError(f"alert webhook {url!r} is neither https nor loopback", "use https")
        self._url = url
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def fire(self, alert: Alert) -> None:
        try:
            r = self._client.post(self._url, json=alert.model_dump(mode="json"))
        except httpx.HTTPError as e:
            raise AlertError(f"alert webhook unreachable: {e}", "check the receiver") from e
        if not 200 <= r.status_code < 300:
            raise AlertError(f"alert webhook answered HTTP {r.status_code}", "check the receiver")
