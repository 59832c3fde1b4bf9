"""MCP elicitation as a live approval channel (an adapter over the pure :mod:`._elicit` core).

The gateway's transport binds a :class:`ElicitationChannel` to the agent's connection (a way to
send a server->client request with a bounded wait, and the capabilities the client declared at
``initialize``). For a pending request :meth:`ElicitationChannel.ask`:

- picks the mode with :func:`choose_mode` (client modes x the policy's allowed modes for the
  category); ``None`` -> nothing is sent, the request waits for an operator channel;
- **form** (never for operator-only categories): an explicit ``accept`` with ``approve: true``
  approves through the state machine with channel ``elicitation``; decline, cancel, malformed
  content, an error answer or the timeout deny;
- **url**: points the user at the approval page (the URL names the request, grants nothing); the
  response decides nothing: the decision still comes only from an operator channel.

An event the state machine refuses (already decided, expired) changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from stockade.errors import StockadeError
from stockade.models import Category, Clock

from ._elicit import ElicitMode, choose_mode, client_modes, form_answer, form_request, url_request
from ._machine import ApprovalRequest, Event, State
from ._store import ApprovalStore

__all__ = ["ElicitationChannel", "ElicitationFailed", "SendRequest"]

#: ``send(method, params, timeout_s)`` -> the client's ``result`` object; raises on timeout/error.
SendRequest = Callable[[str, dict[str, Any], float], Awaitable[dict[str, Any]]]


class ElicitationFailed(StockadeError):
    """The client answered an elicitation with an error, or not within the bound."""


class ElicitationChannel:
    def __init__(
        self,
        store: ApprovalStore,
        clock: Clock,
        *,
        allowed: Callable[[Category], frozenset[ElicitMode]],
        page_url: str | None,
        timeout_s: float,
        new_id: Callable[[], str] = lambda: "eli_" + secrets.token_hex(8),
    ) -> None:
        self._store = store
        self._clock = clock
        self._allowed = allowed
        self._page_url = page_url
        self._timeout = timeout_s
        self._new_id = new_id
        self._send: SendRequest | None = None
        self._modes: frozenset[ElicitMode] = frozenset()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._local = threading.local()
        self._asks: set[concurrent.futures.Future[ElicitMode | None]] = set()

    def bind(self, send: SendRequest, capabilities: Mapping[str, Any] | None) -> None:
        """The agent's connection: how to ask it, and what it declared at ``initialize``.
        Called on the transport's event loop (the approver hooks ask on that loop)."""
        self._send = send
        self._modes = client_modes(capabilities)
        try:
            self._loop = asyncio.get_running_loop()
        except RuntimeError:  # bound outside a loop: ask() still works, the hooks send nothing
            self._loop = None

    # -- hooks for StoreApprover (it runs in a worker thread) --------------------------------

    def new_id(self) -> str:
        """``StoreApprover(new_id=...)``: remembers the request this thread is deciding."""
        rid = "apr_" + secrets.token_hex(8)
        self._local.rid = rid
        self._local.asked = False
        return rid

    def wait(self, seconds: float) -> None:
        """``StoreApprover(wait=...)``: on the first wait (the request is stored by then) ask the
        client once, on the transport's loop; then wait as usual, bounded by ``seconds``."""
        rid = getattr(self._local, "rid", None)
        loop = self._loop
        if rid is not None and not self._local.asked and loop is not None:
            self._local.asked = True
            request = self._store.get(rid, now=self._clock.now())
            fut = asyncio.run_coroutine_threadsafe(self.ask(request), loop)
            self._asks.add(fut)
            fut.add_done_callback(self._asks.discard)
        threading.Event().wait(seconds)

    def mode_for(self, request: ApprovalRequest) -> ElicitMode | None:
        if self._send is None:
            return None
        allowed = self._allowed(request.category)
        if self._page_url is None:
            allowed = allowed - {"url"}
        return choose_mode(request, self._modes, allowed)

    async def ask(self, request: ApprovalRequest) -> ElicitMode | None:
        """Elicit a decision for ``request``; returns the mode used (``None``: nothing sent)."""
        mode = self.mode_for(request)
        send = self._send
        if mode is None or send is None:
            return None
        if mode == "url":
            page = self._page_url or ""  # mode_for drops url without a page
            with contextlib.suppress(StockadeError):  # a URL-mode answer decides nothing
                await send(
                    "elicitation/create",
                    url_request(request, page, self._new_id()),
                    self._timeout,
                )
            return mode
        try:
            response = await send("elicitation/create", form_request(request), self._timeout)
        except StockadeError as e:
            response = {"action": "error", "_why": e.what}
        event = form_answer(request, response, client=request.call.client, now=self._clock.now())
        self._apply(request.id, event)
        return mode

    def _apply(self, request_id: str, event: Event) -> None:
        current = self._store.get(request_id, now=self._clock.now())
        if current.state != State.PENDING:
            return  # an operator (or the deadline) decided first
        try:
            self._store.transition(request_id, event)
        except StockadeError:
            return  # refused by the state machine: nothing changes, the request stays as it was
