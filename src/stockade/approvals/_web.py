"""The approval page: a small Starlette app (serve it with :func:`serve`, loopback only).

Defences: per-operator login tokens from the secret store; an HttpOnly, SameSite=Strict session
cookie; a CSRF token in every form, checked on every POST; state changes by POST only; the Host
header must be one of the served names (DNS rebinding) and a present Origin must be ours; a strict
Content-Security-Policy with no script allowed at all; everything escaped (see :mod:`._page`).
A decision names the request id *and* its digest: what the operator reviewed is what is decided.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from stockade.errors import StockadeError
from stockade.models import Clock
from stockade.secrets import SecretStore

from ._auth import Session, Sessions
from ._errors import LoginRefused
from ._machine import Event, EventKind, State
from ._page import STYLE, history_page, index_page, login_page, message_page
from ._store import ApprovalStore

__all__ = ["CSP", "approval_app"]

CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'none'; "
    "connect-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
COOKIE = "stockade_approvals"
_MAX_BATCH = 200
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # no-referrer would make POST Origin "null"
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


class _Guard(BaseHTTPMiddleware):
    def __init__(self, app: object, hosts: frozenset[str]) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._hosts = hosts

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        host = request.headers.get("host", "")
        if host not in self._hosts:
            return PlainTextResponse("unknown host", status_code=421)
        origin = request.headers.get("origin")
        if request.method == "POST" and origin is not None:
            o = urlsplit(origin)
            if o.netloc not in self._hosts or o.scheme != request.url.scheme:
                return PlainTextResponse("cross-origin request refused", status_code=403)
        if request.method not in ("GET", "HEAD", "POST"):
            return PlainTextResponse("method not allowed", status_code=405)
        response = await call_next(request)
        for k, v in _HEADERS.items():
            response.headers[k] = v
        return response


def approval_app(
    store: ApprovalStore,
    secrets_store: SecretStore,
    clock: Clock,
    *,
    hosts: tuple[str, ...],
    secure_cookie: bool = False,
) -> Starlette:
    """The ASGI app. ``hosts`` are the exact ``Host`` values served (e.g. ``127.0.0.1:8765``)."""
    sessions = Sessions(secrets_store, clock)

    def html(body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(body, status_code=status)

    def session_of(request: Request) -> Session:
        return sessions.get(request.cookies.get(COOKIE))

    async def posted(request: Request) -> tuple[Session, dict[str, list[str]]]:
        session = session_of(request)
        form = await request.form(max_files=0, max_fields=_MAX_BATCH + 10)
        fields: dict[str, list[str]] = {}
        for k, v in form.multi_items():
            if isinstance(v, str):
                fields.setdefault(k, []).append(v)
        sessions.check_csrf(session, next(iter(fields.get("csrf", [])), None))
        return session, fields

    def decide(session: Session, kind: EventKind, rid: str, digest: str) -> str:
        req = store.get(rid, now=clock.now())
        if req.digest != digest:
            return f"{rid}: refused (the request changed since it was shown)"
        if req.state != State.PENDING:
            return f"{rid}: not decided, it is {req.state.value}"
        updated = store.transition(
            rid, Event(kind=kind, by=session.operator, channel="web", at=clock.now())
        )
        return f"{rid}: {updated.state.value} by {session.operator}"

    async def index(request: Request) -> Response:
        try:
            session = session_of(request)
        except LoginRefused:
            return RedirectResponse("/login", status_code=303)
        pending = store.list(now=clock.now(), states=(State.PENDING,))
        return html(
            index_page(session.operator, session.csrf, pending, clock.now(), store.kill_switch())
        )

    async def history(request: Request) -> Response:
        try:
            session_of(request)
        except LoginRefused:
            return RedirectResponse("/login", status_code=303)
        return html(history_page(store.list(now=clock.now(), limit=500)))

    async def login_form(request: Request) -> Response:
        return html(login_page())

    async def login(request: Request) -> Response:
        form = await request.form(max_files=0, max_fields=5)
        operator, token = form.get("operator"), form.get("token")
        if not isinstance(operator, str) or not isinstance(token, str):
            return html(login_page("operator and token are required"), 400)
        try:
            sid, _ = sessions.login(operator, token)
        except LoginRefused as exc:
            return html(login_page(exc.what), 403)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, sid, httponly=True, samesite="strict", secure=secure_cookie, path="/"
        )
        return response

    async def logout(request: Request) -> Response:
        await posted(request)
        sessions.logout(request.cookies.get(COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def decide_one(request: Request) -> Response:
        session, f = await posted(request)
        action = (f.get("action") or [""])[0]
        if action not in ("approve", "deny"):
            return html(message_page("refused", "action must be approve or deny"), 400)
        kind: EventKind = "approve" if action == "approve" else "deny"
        text = decide(session, kind, (f.get("id") or [""])[0], (f.get("digest") or [""])[0])
        return html(message_page("decision", text))

    async def batch(request: Request) -> Response:
        session, f = await posted(request)
        action = (f.get("action") or [""])[0]
        items = f.get("item") or []
        if action not in ("approve", "deny") or not items or len(items) > _MAX_BATCH:
            return html(message_page("refused", "select reviewed items and an action"), 400)
        kind: EventKind = "approve" if action == "approve" else "deny"
        out = []
        for item in items:
            rid, _, digest = item.partition(":")
            try:
                out.append(decide(session, kind, rid, digest))
            except StockadeError as exc:  # one bad item does not stop the others
                out.append(f"{rid}: not decided ({exc.what})")
        return html(message_page("batch decision", "; ".join(out)))

    async def kill(request: Request) -> Response:
        session, f = await posted(request)
        reason = (f.get("reason") or [""])[0].strip()[:500]
        if not reason:
            return html(message_page("refused", "the kill switch needs a reason"), 400)
        n = store.set_kill(engaged=True, by=session.operator, reason=reason, now=clock.now())
        return html(message_page("kill switch engaged", f"{len(n)} open request(s) cancelled"))

    async def style(request: Request) -> Response:
        return Response(STYLE, media_type="text/css")

    async def refused(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, StockadeError):  # registered for StockadeError only
            raise exc
        status = 403 if isinstance(exc, LoginRefused) else 400
        return html(message_page("refused", exc.what), status)

    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/history", history, methods=["GET"]),
            Route("/login", login_form, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Route("/decide", decide_one, methods=["POST"]),
            Route("/batch", batch, methods=["POST"]),
            Route("/kill", kill, methods=["POST"]),
            Route("/static/style.css", style, methods=["GET"]),
        ],
        middleware=[Middleware(_Guard, hosts=frozenset(hosts))],
        exception_handlers={StockadeError: refused},
    )
