"""An audit sink that fires alert hooks on the events operators must hear about at once.

It wraps the sink a component already writes to, so the gateway and the kill switch need no
alert code of their own: ``gateway.server_failed`` fires ``server_unreachable``,
``gateway.server_restart`` (the supervisor restarting a crashed server) fires ``server_crashed``,
and ``approval.kill_switch``
with ``engaged: true`` fires ``kill_switch``. The event is written first; a hook that fails is
recorded as an ``alert.failed`` event and never loses or changes the original event.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from typing import Any

from stockade.models import AuditEvent, AuditSink, Clock
from stockade.textsafe import safe_text

from ._alerts import (
    Alert,
    AlertError,
    AlertHook,
    AlertKind,
    CommandHook,
    WebhookHook,
    make_alert,
)

__all__ = ["AlertingAuditSink", "alert_for", "alert_hooks", "with_alerts"]


def alert_hooks(command: str | None, webhook: str | None) -> list[AlertHook]:
    """The hooks the options ask for; a bad webhook URL or empty command raises AlertError."""
    hooks: list[AlertHook] = []
    if command is not None:
        hooks.append(CommandHook(shlex.split(command)))
    if webhook is not None:
        hooks.append(WebhookHook(webhook))
    return hooks


def with_alerts(inner: Any, hooks: Sequence[AlertHook], clock: Clock) -> Any:
    """``inner`` wrapped in an :class:`AlertingAuditSink` when there are hooks, else itself."""
    if not hooks or inner is None:
        return inner
    return AlertingAuditSink(inner, hooks, clock)


def alert_for(event_type: str, data: dict[str, Any], clock: Clock) -> Alert | None:
    """The alert an audit event calls for, or ``None`` (pure; no hooks fired here)."""
    server = safe_text(str(data.get("server", "?")), limit=100)
    kind: AlertKind
    if event_type == "gateway.server_failed":
        kind, subject = "server_unreachable", server
        detail = f"server {server} failed: {safe_text(str(data.get('error', '')), limit=300)}"
    elif event_type == "gateway.server_restart":
        kind, subject = "server_crashed", server
        detail = f"server {server} crashed and is being restarted"
    elif event_type == "approval.kill_switch" and data.get("engaged") is True:
        by = safe_text(str(data.get("by", "?")), limit=100)
        kind, subject = "kill_switch", "kill_switch"
        detail = f"kill switch engaged by {by}: {safe_text(str(data.get('reason', '')), limit=300)}"
    else:
        return None
    return make_alert(kind, subject, detail, clock, event=event_type)


class AlertingAuditSink:
    """An :class:`AuditSink` that forwards every event and fires ``hooks`` for alerting ones."""

    def __init__(self, inner: AuditSink, hooks: Sequence[AlertHook], clock: Clock) -> None:
        self._inner = inner
        self._hooks = tuple(hooks)
        self._clock = clock

    def append(
        self,
        type: str,
        data: dict[str, Any],
        *,
        run_id: str | None = None,
        session_id: str | None = None,
    ) -> AuditEvent:
        event = self._inner.append(type, data, run_id=run_id, session_id=session_id)
        alert = alert_for(type, data, self._clock)
        if alert is not None:
            for hook in self._hooks:
                try:
                    hook.fire(alert)
                except AlertError as e:
                    self._inner.append(
                        "alert.failed",
                        {"kind": alert.kind, "subject": alert.subject, "error": e.what},
                        run_id=run_id,
                        session_id=session_id,
                    )
        return event

    def __getattr__(self, name: str) -> Any:
        # Sinks carry extras (add_secrets, close, ...); the wrapper must not hide them.
        return getattr(self._inner, name)
