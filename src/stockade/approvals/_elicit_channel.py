"""MCP elicitation as a live approval channel (an adapter over the pure :mod:`._elicit` core).

The transports tell the channel how to reach the agent: stdio binds its one connection at
``initialize`` (:meth:`ElicitationChannel.bind`); Streamable HTTP gives each ``tools/call`` its own
(:meth:`ElicitationChannel.per_call`: the call's SSE stream, the session's capabilities); a
2026-07-28 call carries a :class:`~._rounds.Round` instead (no server->client requests in that
era). :class:`~._approver.StoreApprover` calls :meth:`opened` once a request is stored, and
:meth:`resumed` before recording one. For a pending request:

- the mode comes from :func:`choose_mode` (client modes x the policy's allowed modes for the
  category); ``None`` -> nothing is sent, the request waits for an operator channel;
- **form** (never for operator-only categories): an explicit ``accept`` with ``approve: true``
  approves through the state machine with channel ``elicitation``; decline, cancel, malformed
  content, an error answer or the timeout deny;
- **url**: points the user at the approval page (the URL names the request, grants nothing); the
  response decides nothing: the decision still comes only from an operator channel;
- **2026-07-28**: the call is answered at once with ``input_required`` (the question, and the
  request state sealed to the request, call digest, client, mode and expiry); the retry opens the
  state (or is denied), applies a form answer, and then waits for the decision like any call.

An event the state machine refuses (already decided, expired) changes nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import secrets
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from stockade.errors import StockadeError
from stockade.models import Category, Clock, ToolCall

from ._elicit import ElicitMode, choose_mode, client_modes, form_answer, form_request, url_request
from ._machine import ApprovalRequest, Event, State
from ._mrtr import RequestStateCodec, input_required, retry_event
from ._rounds import current_round
from ._store import ApprovalStore

__all__ = ["Connection", "ElicitationChannel", "ElicitationFailed", "SendRequest"]

#: ``send(method, params, timeout_s)`` -> the client's ``result`` object; raises on timeout/error.
SendRequest = Callable[[str, dict[str, Any], float], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Connection:
    """One way to ask the agent: a server->client request, the modes it declared, its loop."""

    send: SendRequest
    modes: frozenset[ElicitMode]
    loop: asyncio.AbstractEventLoop | None


_CALL: ContextVar[Connection | None] = ContextVar("stockade_elicit_connection", default=None)


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
        codec: RequestStateCodec | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._allowed = allowed
        self._page_url = page_url
        self._timeout = timeout_s
        self._new_id = new_id
        # No operator key given: a fresh one per process (a restart voids open states: deny).
        self._codec = codec or RequestStateCodec(secrets.token_bytes(32))
        self._bound: Connection | None = None
        self._asks: set[concurrent.futures.Future[ElicitMode | None]] = set()

    def bind(self, send: SendRequest, capabilities: Mapping[str, Any] | None) -> None:
        """The agent's one connection (stdio): how to ask it, what it declared at
        ``initialize``. Called on the transport's event loop (asks run on that loop)."""
        self._bound = Connection(send, client_modes(capabilities), _running_loop())

    @contextlib.contextmanager
    def per_call(self, send: SendRequest, capabilities: Mapping[str, Any] | None) -> Iterator[None]:
        """The connection of one call (HTTP: its response stream), for tasks created inside."""
        token = _CALL.set(Connection(send, client_modes(capabilities), _running_loop()))
        try:
            yield
        finally:
            _CALL.reset(token)

    def _connection(self) -> Connection | None:
        return _CALL.get() or self._bound

    # -- hooks for StoreApprover (it runs in a worker thread) --------------------------------

    def opened(self, request: ApprovalRequest) -> bool:
        """``request`` is stored and pending. A 2026-07-28 call: put the ``input_required``
        answer on its round and return ``True`` (answer now). Otherwise ask the connection's
        client once, on its loop, without waiting (the approver polls the store) -> ``False``."""
        round_ = current_round()
        if round_ is not None:
            mode = self._choose(request, round_.modes)
            if mode is None:
                return False
            round_.result = input_required(
                request,
                mode=mode,
                codec=self._codec,
                page_url=self._page_url or "",
                elicitation_id=self._new_id(),
            )
            return True
        conn = self._connection()
        if conn is None or conn.loop is None:
            return False
        fut = asyncio.run_coroutine_threadsafe(self.ask(request, conn), conn.loop)
        self._asks.add(fut)
        fut.add_done_callback(self._asks.discard)
        return False

    def resumed(self, call: ToolCall, digest: str) -> str | None:
        """The request a 2026-07-28 retry names (its form answer applied), or ``None`` when the
        call is not a retry. Raises (-> deny) when the state is altered, expired, for another
        call or client."""
        round_ = current_round()
        if round_ is None or round_.state is None:
            return None
        now = self._clock.now()
        sealed = self._codec.open(round_.state, digest=digest, client=call.client, now=now)
        request = self._store.get(sealed.request_id, now=now)
        event = retry_event(
            request,
            {"inputResponses": round_.responses or {}},
            mode=sealed.mode,
            client=call.client,
            now=now,
        )
        if event is not None:
            self._apply(request.id, event)
        return request.id

    def _choose(self, request: ApprovalRequest, modes: frozenset[ElicitMode]) -> ElicitMode | None:
        allowed = self._allowed(request.category)
        if self._page_url is None:
            allowed = allowed - {"url"}
        return choose_mode(request, modes, allowed)

    def mode_for(self, request: ApprovalRequest) -> ElicitMode | None:
        conn = self._connection()
        return None if conn is None else self._choose(request, conn.modes)

    async def ask(
        self, request: ApprovalRequest, connection: Connection | None = None
    ) -> ElicitMode | None:
        """Elicit a decision for ``request``; returns the mode used (``None``: nothing sent)."""
        conn = connection or self._connection()
        mode = None if conn is None else self._choose(request, conn.modes)
        if mode is None or conn is None:
            return None
        left = (request.expires_at - self._clock.now()).total_seconds()
        timeout = max(0.0, min(self._timeout, left))
        if mode == "url":
            page = self._page_url or ""  # _choose drops url without a page
            with contextlib.suppress(StockadeError):  # a URL-mode answer decides nothing
                await conn.send(
                    "elicitation/create", url_request(request, page, self._new_id()), timeout
                )
            return mode
        try:
            response = await conn.send("elicitation/create", form_request(request), timeout)
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


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:  # bound outside a loop: ask() still works, the hooks send nothing
        return None
