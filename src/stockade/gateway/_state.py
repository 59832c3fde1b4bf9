"""The state the gateway's parts share (its servers, what they expose, the notifier).

:class:`GatewayState` declares the attributes that :class:`~._lifecycle.ServerLifecycle`,
:class:`~._surface.Surface` and :class:`~._gateway.Gateway` (which sets them) work on, plus the two
lookups every part needs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from stockade.models import AuditSink, Clock, ToolCall

from ._backoff import Backoff
from ._chain import Next
from ._config import GatewayConfig
from ._downstream import DownstreamSession
from ._interceptors import (
    DecisionContext,
    ListingDecider,
    PolicyDecider,
)
from ._launcher import Launcher
from ._pinstore import PinStore
from ._taint import TaintTracker

__all__ = ["AddressedNotify", "GatewayState", "Notify"]

Notify = Callable[[dict[str, Any]], Awaitable[None]]
# A note for some clients only (the transport picks their sessions that asked for it).
AddressedNotify = Callable[[frozenset[str], dict[str, Any]], Awaitable[None]]


class GatewayState:
    config: GatewayConfig
    sessions: dict[str, DownstreamSession]
    backoff: Backoff
    taint: TaintTracker
    _pins: PinStore
    _audit: AuditSink
    _launcher: Launcher
    _decider: PolicyDecider
    _clock: Clock
    _exposed: dict[str, dict[str, dict[str, Any]]]
    _packages: dict[str, str]
    _refreshing: set[str]
    _lazy: set[str]
    _idle: set[str]
    _dirty: set[str]
    _last_used: dict[str, datetime]
    _notify: Notify | None
    _notify_to: AddressedNotify | None
    _tasks: set[asyncio.Task[None]]
    _resource_chain: Next
    _prompt_chain: Next
    _prompt_names: dict[str, set[str]]
    # (server, original uri) -> {(client, the uri as that client subscribed to it)}
    _subscriptions: dict[tuple[str, str], set[tuple[str, str]]]
    # downstream progress token -> (server, the agent's token, the call's own channel if any)
    _progress: dict[str, tuple[str, str | int, Notify | None]]

    def _server_notification(self, server: str, method: str, params: dict[str, Any]) -> None:
        """A notification a server sent (overridden where the agent-facing surface lives)."""

    def _lookup(self, server: str, tool: str) -> dict[str, Any] | None:
        return self._exposed.get(server, {}).get(tool)

    def _listable(self, client: str, server: str, tool: str) -> bool:
        if isinstance(self._decider, ListingDecider):
            return self._decider.listable(client or "anonymous", server, tool)
        probe = ToolCall(server=server, tool=tool, client=client or "anonymous")
        dctx = DecisionContext(tainted=False, exposed_name=f"{server}__{tool}", probe=True)
        return self._decider(probe, dctx).kind != "deny"
