"""Streamable HTTP transport (2025-11-25 era, JSON responses; a GET stream for list changes).

* Binds loopback only: TLS is not implemented, so a non-loopback bind is refused.
* Validates ``Host`` (must name the bound loopback address and port) and ``Origin`` (absent, or a
  loopback origin on the same port) against DNS rebinding.
* Authenticates every request with ``Authorization: Bearer <token>`` mapped to a client name;
  ``Mcp-Session-Id`` is bound to that client and is never itself authentication.
* Bounds request bodies to ``max_message_bytes`` while reading.
* ``notifications/cancelled`` cancels an in-flight request of the same client and session (the
  server is told too); the cancelled POST ends with 204 and no JSON-RPC answer.
* ``GET`` opens a server-sent-event stream. ``notifications/*/list_changed`` (they name no
  content) go to every stream; a server's log messages and resource updates go, sanitised and
  marked untrusted, only to a stream of a session that asked for them (a ``logging/setLevel`` at
  or below the message's level; a ``resources/subscribe`` of that URI) and whose client the gateway
  addressed (see :mod:`._httpnotes`), one stream per session.
* A ``tools/call`` that names a ``progressToken`` from a client accepting ``text/event-stream`` is
  answered as an SSE stream carrying that call's own progress and then its response; every other
  answer is JSON.
* Elicitation (2025-11-25 sessions, with an :class:`ElicitationChannel`): a ``tools/call``,
  ``resources/read`` or ``prompts/get`` of a session whose client declared ``elicitation`` at
  ``initialize`` and accepts ``text/event-stream`` is answered as an SSE stream; an approval
  question for that request travels on it as an ``elicitation/create`` request (an id of ours,
  unguessable). The client answers with a POST carrying the JSON-RPC response in the same
  session; a response that answers none of that session's open questions (another session's, a
  forged or a replayed id) is refused with 400. No answer within the bound denies. 2026-07-28
  requests are asked through ``input_required`` results instead (see
  :mod:`stockade.approvals._rounds`).
* ``unsafe_no_auth_client`` (``--unsafe-no-auth``, for conformance testing only): a request with no
  ``Authorization`` header is taken as that client; a wrong token is still refused. Recorded in
  the audit log when the transport is made, and on every unauthenticated request.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import ipaddress
import json
import secrets
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from stockade.approvals import ElicitationChannel, client_modes
from stockade.errors import StockadeError
from stockade.textsafe import safe_text

from ._errors import ConfigError
from ._gateway import MODERN_VERSION, SUPPORTED_VERSIONS, VERSION_META, Gateway
from ._httpnotes import SessionNotes, session_note
from ._jsonrpc import INTERNAL_ERROR, INVALID_REQUEST, error_response, parse_message
from ._stdio import ClientRequests, idle_ticker

__all__ = ["HttpTransport", "check_bind", "serve_http"]

_LOOPBACK_NAMES = {"localhost"}
_MAX_SESSIONS = 1024
_MAX_STREAMS = 64
_STREAM_QUEUE = 32
_KEEPALIVE_S = 15.0


def check_bind(host: str, port: int) -> None:
    """Refuse anything but a loopback address (no TLS yet) and an out-of-range port."""
    if not 0 < port < 65536:
        raise ConfigError(f"port {port} is out of range", "use 1-65535")
    if host in _LOOPBACK_NAMES:
        return
    try:
        ip = ipaddress.ip_address(host)
    except ValueError as e:
        raise ConfigError(f"bind host {host!r} is not an IP address", "bind 127.0.0.1") from e
    if not ip.is_loopback:
        raise ConfigError(
            f"refusing to bind {host}:{port} without TLS (got a non-loopback address, expected "
            "127.0.0.1 or ::1)",
            "bind 127.0.0.1 and put a TLS-terminating proxy in front",
        )


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class HttpTransport:
    def __init__(
        self,
        gateway: Gateway,
        *,
        host: str,
        port: int,
        tokens: Mapping[str, str],
        unsafe_no_auth_client: str | None = None,
        channel: ElicitationChannel | None = None,
    ) -> None:
        check_bind(host, port)
        if not tokens and unsafe_no_auth_client is None:
            raise ConfigError("no client tokens configured for HTTP", "pass --client-token")
        if unsafe_no_auth_client is not None:
            if unsafe_no_auth_client not in gateway.config.clients:
                raise ConfigError(
                    f"--unsafe-no-auth client {unsafe_no_auth_client!r} is not one the policy "
                    f"knows (expected one of {', '.join(gateway.config.clients)})",
                    "pass --client with a client of the policy",
                )
            gateway.record(
                "gateway.unsafe_no_auth",
                {"client": unsafe_no_auth_client, "bind": f"{host}:{port}", "warning": "UNSAFE"},
            )
        self._anonymous = unsafe_no_auth_client
        for client, token in tokens.items():
            if len(token) < 16:
                raise ConfigError(f"token of client {client!r} is too short", "use 16+ characters")
        self.gateway = gateway
        self.port = port
        self._tokens = [(_digest(t), c) for c, t in tokens.items()]
        hosts = {host, "127.0.0.1", "localhost", "[::1]"}
        self._hosts = {f"{h}:{port}" for h in hosts}
        self._origins = {f"http://{h}:{port}" for h in hosts}
        self._sessions: dict[str, str] = {}
        # each open GET stream -> (its client, its session id if it named one)
        self._streams: dict[asyncio.Queue[dict[str, Any]], tuple[str, str | None]] = {}
        self._notes = SessionNotes()
        self._inflight: dict[tuple[str, str, str], asyncio.Future[dict[str, Any] | None]] = {}
        self._channel = channel
        # Per session: the capabilities declared at initialize, and our open questions to it.
        self._caps: dict[str, dict[str, Any]] = {}
        self._asks: dict[str, ClientRequests] = {}
        gateway.set_notifier(self._broadcast)
        gateway.set_addressed_notifier(self._deliver)
        self.app = Starlette(
            routes=[Route("/mcp", self._endpoint, methods=["GET", "POST", "DELETE"])]
        )

    def _client(self, request: Request) -> str | None:
        if "authorization" not in request.headers and self._anonymous is not None:
            self.gateway.record("gateway.unsafe_no_auth_request", {"client": self._anonymous})
            return self._anonymous
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        d = _digest(token.strip())
        found = None
        for digest, client in self._tokens:
            if hmac.compare_digest(digest, d):
                found = client
        return found

    async def _body(self, request: Request) -> bytes | None:
        limit = self.gateway.config.max_message_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return None
        buf = bytearray()
        async for chunk in request.stream():
            buf.extend(chunk)
            if len(buf) > limit:
                return None
        return bytes(buf)

    async def _endpoint(self, request: Request) -> Response:
        if request.headers.get("host", "") not in self._hosts:
            return JSONResponse(error_response(None, INVALID_REQUEST, "bad Host header"), 421)
        origin = request.headers.get("origin")
        if origin is not None and origin not in self._origins:
            return JSONResponse(error_response(None, INVALID_REQUEST, "origin not allowed"), 403)
        client = self._client(request)
        if client is None:
            return JSONResponse(
                error_response(None, INVALID_REQUEST, "authentication required"),
                401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        version = request.headers.get("mcp-protocol-version")
        if version is not None and version not in (*SUPPORTED_VERSIONS, MODERN_VERSION):
            return JSONResponse(
                error_response(None, INVALID_REQUEST, "unsupported protocol version"), 400
            )
        sid = request.headers.get("mcp-session-id")
        if request.method == "GET":
            return self._stream(request, client, sid)
        if request.method == "DELETE":
            if sid is None or self._sessions.get(sid) != client:
                return Response(status_code=404)
            self._forget_session(sid)
            return Response(status_code=204)
        return await self._post(request, client, sid)

    def _forget_session(self, sid: str) -> None:
        self._sessions.pop(sid, None)
        self._notes.forget(sid)
        self._caps.pop(sid, None)
        self._asks.pop(sid, None)

    def _answer(self, client: str, sid: str | None, msg: dict[str, Any]) -> Response:
        """A JSON-RPC response from the client: it must answer an open question of its session."""
        asks = self._asks.get(sid) if sid is not None else None
        if asks is None or not asks.resolve(msg):
            self.gateway.record(
                "gateway.elicitation_refused",
                {"client": client, "why": "answers no open question of this session"},
            )
            why = "no open request of this session has that id"
            err = error_response(None, INVALID_REQUEST, why)
            return JSONResponse(err, 400)
        return Response(status_code=202)

    def _elicits(self, request: Request, msg: dict[str, Any], sid: str | None) -> bool:
        """A session call whose client may be asked (declared elicitation, reads SSE)."""
        return (
            self._channel is not None
            and sid is not None
            and msg.get("method") in _ASKING
            and bool(client_modes(self._caps.get(sid)))
            and "text/event-stream" in request.headers.get("accept", "")
        )

    def _cancel(self, client: str, sid: str | None, params: object) -> None:
        """``notifications/cancelled`` reaches only a request of the same client and session."""
        rid = params.get("requestId") if isinstance(params, dict) else None
        if isinstance(rid, (str, int)):
            task = self._inflight.get((client, sid or "", json.dumps(rid)))
            if task is not None:
                task.cancel()  # the downstream call is cancelled too

    def _progress_stream(
        self,
        msg: dict[str, Any],
        client: str,
        key: tuple[str, str, str] | None,
        headers: dict[str, str],
        sid: str | None = None,
    ) -> Response:
        """Answer a call that asked for progress as an SSE stream: its own progress, then the
        response. Nothing else travels on it, so no other call's notes can reach this client.
        With ``sid`` (a session whose client may be asked) the call's approval questions travel
        on it too, as ``elicitation/create`` requests."""
        notes: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_STREAM_QUEUE)

        async def note(m: dict[str, Any]) -> None:
            if not notes.full():  # a client that does not read loses progress, not memory
                notes.put_nowait(m)

        handling = self.gateway.handle(msg, client=client, notify=note)
        asks = self._asks.get(sid) if sid is not None else None
        if sid is not None and asks is not None and self._channel is not None:
            ask = functools.partial(asks.request, send=notes.put)  # bounded by its timeout
            with self._channel.per_call(ask, self._caps.get(sid)):
                task = asyncio.ensure_future(handling)  # the task keeps the call's connection
        else:
            task = asyncio.ensure_future(handling)
        if key is not None:
            self._inflight[key] = task

        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    getter = asyncio.ensure_future(notes.get())
                    await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                    if getter.done():
                        yield _sse(getter.result())
                        continue
                    getter.cancel()
                    break
                while not notes.empty():
                    yield _sse(notes.get_nowait())
                if task.cancelled():
                    return  # cancelled by the client: no answer
                try:
                    resp = task.result()
                except StockadeError as e:  # the transport boundary: fail closed
                    resp = error_response(
                        msg.get("id"), INTERNAL_ERROR, safe_text(e.what, limit=300)
                    )
                if resp is not None:
                    yield _sse(resp)
            finally:
                if not task.done():
                    task.cancel()  # the client went away: so does its call
                if key is not None and self._inflight.get(key) is task:
                    del self._inflight[key]

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def _broadcast(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if not isinstance(method, str) or not method.endswith("/list_changed"):
            return  # logs and progress belong to one connection: never broadcast
        for queue in list(self._streams):
            if queue.full():
                continue  # a stalled reader misses a hint; it re-lists when it reconnects
            queue.put_nowait({"jsonrpc": "2.0", "method": method})

    async def _deliver(self, clients: frozenset[str], msg: dict[str, Any]) -> None:
        """A log message or resource update: to the newest stream of each session of an
        addressed client that asked for it; a stalled stream misses it."""
        note = session_note(msg)
        if note is None:
            return
        chosen: dict[str, asyncio.Queue[dict[str, Any]]] = {}
        for queue, (client, sid) in self._streams.items():
            if (
                sid is not None
                and client in clients
                and self._sessions.get(sid) == client
                and self._notes.wants(sid, note)
            ):
                chosen[sid] = queue  # streams are kept in opening order: the newest wins
        for queue in chosen.values():
            if not queue.full():
                queue.put_nowait(note)

    def _stream(self, request: Request, client: str, sid: str | None) -> Response:
        if "text/event-stream" not in request.headers.get("accept", ""):
            return Response(status_code=406)
        if sid is not None and self._sessions.get(sid) != client:
            return Response(status_code=404)
        if len(self._streams) >= _MAX_STREAMS:
            return Response(status_code=429)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(_STREAM_QUEUE)
        self._streams[queue] = (client, sid)

        async def events() -> AsyncIterator[bytes]:
            try:
                while True:
                    try:
                        msg = await asyncio.wait_for(queue.get(), _KEEPALIVE_S)
                    except TimeoutError:
                        yield b": keepalive\n\n"
                        continue
                    yield _sse(msg)
            finally:
                self._streams.pop(queue, None)

        return StreamingResponse(events(), media_type="text/event-stream")

    async def _post(self, request: Request, client: str, sid: str | None) -> Response:
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json":
            return JSONResponse(
                error_response(None, INVALID_REQUEST, "content-type must be application/json"), 415
            )
        body = await self._body(request)
        if body is None:
            return JSONResponse(
                error_response(None, INVALID_REQUEST, "request body too large"), 413
            )
        msg = parse_message(body)
        if isinstance(msg, tuple):
            code, text, rid = msg
            return JSONResponse(error_response(rid, code, text), 400)
        headers: dict[str, str] = {}
        params = msg.get("params")
        meta = params.get("_meta") if isinstance(params, dict) else None
        body_version = meta.get(VERSION_META) if isinstance(meta, dict) else None
        header_version = request.headers.get("mcp-protocol-version")
        if body_version is not None or msg.get("method") == "server/discover":
            # 2026-07-28: stateless; the header must agree with the body's _meta version
            if body_version is not None and header_version != body_version:
                err = error_response(
                    msg.get("id"), INVALID_REQUEST, "MCP-Protocol-Version header and _meta disagree"
                )
                return JSONResponse(err, 400)
        elif msg.get("method") == "initialize":
            sid = secrets.token_urlsafe(24)
            if len(self._sessions) >= _MAX_SESSIONS:  # oldest first: dicts keep insertion order
                self._forget_session(next(iter(self._sessions)))
            self._sessions[sid] = client
            headers["Mcp-Session-Id"] = sid
            caps = params.get("capabilities") if isinstance(params, dict) else None
            if self._channel is not None and isinstance(caps, dict):
                self._caps[sid] = caps
                self._asks[sid] = ClientRequests(_no_stream)
        elif sid is None:
            return JSONResponse(
                error_response(msg.get("id"), INVALID_REQUEST, "missing Mcp-Session-Id"), 400
            )
        elif self._sessions.get(sid) != client:
            return JSONResponse(
                error_response(msg.get("id"), INVALID_REQUEST, "unknown session"), 404
            )
        rid = msg.get("id")
        if "method" not in msg and self._channel is not None:
            return self._answer(client, sid, msg)
        if msg.get("method") == "notifications/cancelled":
            self._cancel(client, sid, msg.get("params"))
            return Response(status_code=202, headers=headers)
        key = (client, sid or "", json.dumps(rid)) if isinstance(rid, (str, int)) else None
        if self._elicits(request, msg, sid):
            return self._progress_stream(msg, client, key, headers, sid)
        if _wants_progress(request, msg):
            return self._progress_stream(msg, client, key, headers)
        # what this session asks to be told (a log level, a subscription), undone if refused
        own = sid is not None and self._sessions.get(sid) == client
        settle = self._notes.ask(sid, msg) if sid is not None and own else None
        task = asyncio.ensure_future(self.gateway.handle(msg, client=client))
        if key is not None and "method" in msg:
            self._inflight[key] = task
        resp: dict[str, Any] | None = None
        try:
            resp = await task
        except StockadeError as e:  # the transport boundary: fail closed with an error answer
            err = error_response(rid, INTERNAL_ERROR, safe_text(e.what, limit=300))
            return JSONResponse(err, 500)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # this request itself is going away
            return Response(status_code=204, headers=headers)  # cancelled by the client: no answer
        finally:
            if settle is not None:
                settle(resp)  # refused, failed or cancelled: the session asked for nothing
            if key is not None and self._inflight.get(key) is task:
                del self._inflight[key]
        if resp is None:
            return Response(status_code=202, headers=headers)
        return Response(
            json.dumps(resp, ensure_ascii=False, separators=(",", ":")).encode("utf-8"),
            status_code=200,
            media_type="application/json",
            headers=headers,
        )


#: The requests whose approval may be asked on their own response stream.
_ASKING = frozenset({"tools/call", "resources/read", "prompts/get"})


async def _no_stream(msg: dict[str, Any]) -> None:
    raise ConfigError(
        "a question to an HTTP client needs the call's response stream",
        "ask through ElicitationChannel.per_call",
    )


def _sse(msg: dict[str, Any]) -> bytes:
    data = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))
    return f"event: message\ndata: {data}\n\n".encode()


def _wants_progress(request: Request, msg: dict[str, Any]) -> bool:
    params = msg.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return (
        msg.get("method") == "tools/call"
        and isinstance(meta, dict)
        and meta.get("progressToken") is not None
        and "text/event-stream" in request.headers.get("accept", "")
    )


async def serve_http(gateway: Gateway, transport: HttpTransport, host: str) -> None:
    import uvicorn

    config = uvicorn.Config(
        transport.app,
        host=host,
        port=transport.port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=2,  # open GET streams end with the server
    )
    server = uvicorn.Server(config)
    await gateway.start()
    ticker = asyncio.create_task(idle_ticker(gateway))
    try:
        await server.serve()
    finally:
        ticker.cancel()
        await gateway.close()
