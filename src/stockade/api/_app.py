"""The ASGI control API (Starlette): routes, per-route roles, rate limits, errors as JSON.

Authentication is the verified mutual-TLS peer: the server (see :mod:`._server`) puts its
:class:`~stockade.identity.PeerIdentity` in ``scope["stockade.peer"]``; a request without one is
answered 401. Each route lists the roles it admits (403 otherwise). Each identity, and each run
for run-token routes, has a token bucket (429 with ``Retry-After`` when empty).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from stockade.approvals import State
from stockade.errors import IdentityError, NotFoundError, SecretStoreError, StockadeError
from stockade.gates._versions import policy_history
from stockade.identity import PeerIdentity, Role
from stockade.models import RunStatus

from ._deps import ControlPlane
from ._errors import BadRequestError
from ._metrics import Metrics, render_approval_metrics, render_store_metrics
from ._openapi import openapi_document
from ._ratelimit import Limiter

__all__ = ["PEER_SCOPE_KEY", "build_app", "with_peer"]

PEER_SCOPE_KEY = "stockade.peer"
ANY = frozenset(Role)
OPS = frozenset({Role.OPERATOR})
Handler = Callable[[Request], Awaitable[Response]]


def with_peer(app: ASGIApp, peer: PeerIdentity | None) -> ASGIApp:
    """Wrap ``app`` so each request of one connection carries that connection's peer."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, PEER_SCOPE_KEY: peer}
        await app(scope, receive, send)

    return wrapped


def _error(status: int, what: str, fix: str = "", **headers: str) -> JSONResponse:
    return JSONResponse({"error": what, "fix": fix}, status_code=status, headers=headers or None)


def build_app(cp: ControlPlane, metrics: Metrics | None = None) -> Starlette:
    m = metrics or Metrics()
    by_identity = Limiter(cp.identity_limit, cp.clock)
    by_run = Limiter(cp.run_limit, cp.clock)

    def guarded(name: str, roles: frozenset[Role], handler: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            response = await _guard(request, name, roles, handler)
            m.request(name, response.status_code)
            return response

        return endpoint

    async def _guard(
        request: Request, name: str, roles: frozenset[Role], handler: Handler
    ) -> Response:
        peer = request.scope.get(PEER_SCOPE_KEY)
        if not isinstance(peer, PeerIdentity):
            m.auth_refused("no_client_certificate")
            return _error(401, "no verified client certificate", "connect with mutual TLS")
        if peer.not_after <= cp.clock.now():
            # a keep-alive connection can outlive its certificate: check on every request
            m.auth_refused("certificate_expired")
            return _error(
                401,
                f"the client certificate expired at {peer.not_after.isoformat()}",
                "reconnect with a fresh certificate",
            )
        if cp.crl is not None:
            try:
                revoked = cp.crl.is_revoked(peer.serial)
            except IdentityError as e:
                m.auth_refused("crl_unusable")
                return _error(401, e.what, e.fix)
            if revoked:
                m.auth_refused("certificate_revoked")
                return _error(401, f"certificate serial {peer.serial} is revoked", "")
        if peer.role not in roles:
            m.auth_refused("role")
            return _error(
                403,
                f"role {peer.role.value} may not use {name}; "
                f"allowed: {', '.join(sorted(r.value for r in roles))}",
                "use a certificate issued for an allowed role",
            )
        wait = by_identity.check(f"{peer.role.value}:{peer.name}")
        if wait is not None:
            m.rate_limited("identity")
            return _error(
                429,
                f"rate limit for {peer.role.value} {peer.name} exceeded",
                f"retry after {wait} s",
                **{"Retry-After": str(wait)},
            )
        try:
            return await handler(request)
        except NotFoundError as e:
            return _error(404, e.what, e.fix)
        except IdentityError as e:
            m.auth_refused("token")
            return _error(403, e.what, e.fix)
        except SecretStoreError as e:
            return _error(404, e.what, e.fix)
        except StockadeError as e:
            return _error(400 if isinstance(e, BadRequestError) else 500, e.what, e.fix)

    # -- handlers ---------------------------------------------------------------------------
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        checks: dict[str, dict[str, Any]] = {}
        ready = True
        for dep, probe in sorted(cp.readiness.items()):
            try:
                checks[dep] = {"ok": True, "detail": probe()}
            except StockadeError as e:
                ready = False
                checks[dep] = {"ok": False, "detail": e.what, "fix": e.fix}
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    async def metrics_(_: Request) -> Response:
        lines = m.render()
        with cp.open_store() as store:
            lines += render_store_metrics(store)
        if cp.approvals is not None:
            lines += render_approval_metrics(cp.approvals, cp.clock)
        return PlainTextResponse(
            "\n".join(lines) + "\n", media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    async def openapi(_: Request) -> Response:
        return JSONResponse(openapi_document())

    async def list_runs(request: Request) -> Response:
        try:
            limit = int(request.query_params.get("limit", "50"))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 1000:
            return _error(400, "limit must be an integer from 1 to 1000")
        with cp.open_store() as store:
            runs = store.list(limit=limit)
        return JSONResponse({"runs": [r.model_dump(mode="json") for r in runs]})

    async def get_run(request: Request) -> Response:
        with cp.open_store() as store:
            run = store.get(request.path_params["run_id"])
        return JSONResponse(run.model_dump(mode="json"))

    async def get_trace(request: Request) -> Response:
        with cp.open_store() as store:
            trace = store.trace(request.path_params["run_id"])
        return JSONResponse(trace.model_dump(mode="json"))

    async def stop_run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        peer: PeerIdentity = request.scope[PEER_SCOPE_KEY]
        with cp.open_store() as store:
            store.get(run_id)  # 404 when unknown
        outcome = cp.stopper.stop(run_id, f"{peer.role.value}:{peer.name}")
        return JSONResponse({"run_id": run_id, "outcome": outcome}, status_code=202)

    async def audit_verify(_: Request) -> Response:
        if cp.audit is None:
            return _error(404, "no audit log is configured", "start the API with --audit-log")
        report = cp.audit.verify()
        return JSONResponse(report.model_dump(mode="json"), status_code=200 if report.ok else 409)

    async def policy(_: Request) -> Response:
        if cp.policy_hash is None:
            return _error(404, "no policy is loaded", "start the API with --policy")
        return JSONResponse({"effective_hash": cp.policy_hash})

    async def history(_: Request) -> Response:
        with cp.open_store() as store:
            versions = policy_history(store, 100)
        return JSONResponse(
            {"current": cp.policy_hash, "versions": [v.model_dump() for v in versions]}
        )

    async def approvals(request: Request) -> Response:
        if cp.approvals is None:
            return _error(404, "no approval store is configured")
        wanted = request.query_params.getlist("state")
        try:
            states = tuple(State(x) for x in wanted)
        except ValueError:
            return _error(400, f"unknown state in {wanted}", f"use {[x.value for x in State]}")
        found = cp.approvals.list(now=cp.clock.now(), states=states, limit=500)
        return JSONResponse({"approvals": [a.model_dump(mode="json") for a in found]})

    async def kill_switch(_: Request) -> Response:
        if cp.approvals is None:
            return _error(404, "no approval store is configured")
        return JSONResponse(cp.approvals.kill_switch().model_dump(mode="json"))

    async def fetch_secret(request: Request) -> Response:
        """A running workload fetches a secret its server is granted, with a secret:NAME token."""
        run_id, name = request.path_params["run_id"], request.path_params["name"]
        if cp.tokens is None or cp.secrets is None or cp.policy is None:
            return _error(404, "secret delivery is not configured", "start the API with --policy")
        token = _bearer(request)
        if token is None:
            m.auth_refused("token")
            return _error(401, "no run token", "send Authorization: Bearer <run token>")
        cp.tokens.check(token, run_id=run_id, scope=f"secret:{name}")
        with cp.open_store() as store:
            run = store.get(run_id)
            if run.status is not RunStatus.RUNNING:
                m.auth_refused("run_not_running")
                return _error(403, f"run {run_id} is {run.status.value}, not running", "")
            if run.server is None or not cp.policy.has_server(run.server):
                granted: tuple[str, ...] = ()
            else:
                granted = cp.policy.granted_secrets(run.server)
            if name not in granted:
                m.auth_refused("secret_not_granted")
                return _error(
                    403,
                    f"the policy does not grant secret {name!r} to server {run.server!r}",
                    "grant it in the policy's secrets list for that server",
                )
            value = cp.secrets.get(name)
            store.add_evidence(run_id, "secret_fetched", {"name": name})
        return Response(
            value,
            media_type="application/octet-stream",
            headers={"Cache-Control": "no-store"},
        )

    async def progress(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if cp.tokens is None:
            return _error(404, "run tokens are not configured")
        token = _bearer(request)
        if token is None:
            m.auth_refused("token")
            return _error(401, "no run token", "send Authorization: Bearer <run token>")
        cp.tokens.check(token, run_id=run_id, scope="progress")
        wait = by_run.check(f"run:{run_id}")
        if wait is not None:
            m.rate_limited("run")
            return _error(
                429, f"rate limit for run {run_id} exceeded", f"retry after {wait} s",
                **{"Retry-After": str(wait)},
            )  # fmt: skip
        body = await _read_json(request, cp.max_body_bytes)
        message = body.get("message")
        if not isinstance(message, str) or len(message) > 1024:
            raise BadRequestError("message must be a string of at most 1024 characters", "")
        with cp.open_store() as store:
            store.add_evidence(run_id, "progress", {"message": message})
        return JSONResponse({"recorded": True}, status_code=202)

    r = [
        Route("/healthz", guarded("healthz", ANY, healthz)),
        Route("/readyz", guarded("readyz", ANY, readyz)),
        Route("/metrics", guarded("metrics", frozenset({Role.OPERATOR, Role.GATEWAY}), metrics_)),
        Route("/openapi.json", guarded("openapi", ANY, openapi)),
        Route("/v1/runs", guarded("list_runs", OPS, list_runs)),
        Route("/v1/runs/{run_id}", guarded("get_run", OPS, get_run)),
        Route("/v1/runs/{run_id}/trace", guarded("get_run_trace", OPS, get_trace)),
        Route("/v1/runs/{run_id}/stop", guarded("stop_run", OPS, stop_run), methods=["POST"]),
        Route(
            "/v1/runs/{run_id}/progress",
            guarded("report_progress", frozenset({Role.RUNNER, Role.GATEWAY}), progress),
            methods=["POST"],
        ),
        Route(
            "/v1/runs/{run_id}/secrets/{name}",
            guarded("fetch_secret", frozenset({Role.RUNNER, Role.GATEWAY}), fetch_secret),
        ),
        Route("/v1/audit/verify", guarded("verify_audit", OPS, audit_verify)),
        Route(
            "/v1/policy", guarded("get_policy", frozenset({Role.OPERATOR, Role.GATEWAY}), policy)
        ),
        Route("/v1/policy/history", guarded("get_policy_history", OPS, history)),
        Route("/v1/approvals", guarded("list_approvals", OPS, approvals)),
        Route(
            "/v1/kill-switch",
            guarded("get_kill_switch", frozenset({Role.OPERATOR, Role.GATEWAY}), kill_switch),
        ),
    ]
    return Starlette(routes=r)


def _bearer(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    return auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else None


async def _read_json(request: Request, cap: int) -> dict[str, Any]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BadRequestError(f"request body over {cap} bytes", "send less")
    try:
        obj = json.loads(body)
    except ValueError as e:
        raise BadRequestError("request body is not JSON", "send a JSON object") from e
    if not isinstance(obj, dict):
        raise BadRequestError("request body is not a JSON object", "send a JSON object")
    return obj
