"""The OpenAPI 3.1 description of the control API (served at ``/openapi.json``)."""

from __future__ import annotations

from typing import Any

from stockade import __version__

__all__ = ["openapi_document"]

_ERR = {"$ref": "#/components/schemas/Error"}
_RUN_ID = {
    "name": "run_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "minLength": 1},
}


def _resp(desc: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"description": desc}
    if schema is not None:
        out["content"] = {"application/json": {"schema": schema}}
    return out


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Bad request",
        401: "No verified client certificate or run token",
        403: "Role or token not allowed",
        404: "Not found",
        409: "Verification failed",
        429: "Rate limited (see Retry-After)",
        503: "Not ready",
    }
    out = {str(c): _resp(text[c], _ERR) for c in codes}
    if 429 in codes:
        out["429"]["headers"] = {"Retry-After": {"schema": {"type": "integer", "minimum": 1}}}
    return out


def _op(op_id: str, summary: str, ok: dict[str, Any], *errs: int, **extra: Any) -> dict[str, Any]:
    return {
        "operationId": op_id,
        "summary": summary,
        "responses": {**ok, **_errors(401, 403, 429, *errs)},
        **extra,
    }


def openapi_document() -> dict[str, Any]:
    obj = {"type": "object"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stockade control API",
            "version": __version__,
            "description": "Mutual TLS (TLS 1.3) required; roles per operation. See docs/api.md.",
        },
        "paths": {
            "/healthz": {"get": _op("healthz", "Liveness", {"200": _resp("Alive", obj)})},
            "/readyz": {
                "get": _op(
                    "readyz", "Readiness of each dependency", {"200": _resp("Ready", obj)}, 503
                )
            },
            "/metrics": {
                "get": _op(
                    "metrics",
                    "Prometheus text metrics",
                    {"200": {"description": "text/plain exposition format 0.0.4"}},
                )
            },
            "/openapi.json": {
                "get": _op("openapi", "This document", {"200": _resp("OpenAPI", obj)})
            },
            "/v1/runs": {
                "get": _op(
                    "list_runs",
                    "List runs, newest first",
                    {"200": _resp("Runs", {"$ref": "#/components/schemas/RunList"})},
                    400,
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                        }
                    ],
                )
            },
            "/v1/runs/{run_id}": {
                "get": _op(
                    "get_run", "One run", {"200": _resp("Run", obj)}, 404, parameters=[_RUN_ID]
                )
            },
            "/v1/runs/{run_id}/trace": {
                "get": _op(
                    "get_run_trace",
                    "The run trace (record, verification, decisions, tool calls, approvals)",
                    {"200": _resp("Trace", obj)},
                    404,
                    parameters=[_RUN_ID],
                )
            },
            "/v1/runs/{run_id}/stop": {
                "post": _op(
                    "stop_run",
                    "Ask for a run to be stopped (its run tokens are revoked at once)",
                    {"202": _resp("Stop requested", obj)},
                    404,
                    parameters=[_RUN_ID],
                )
            },
            "/v1/runs/{run_id}/progress": {
                "post": _op(
                    "report_progress",
                    "A workload reports progress with its run token (scope: progress)",
                    {"202": _resp("Recorded", obj)},
                    400,
                    404,
                    parameters=[_RUN_ID],
                    security=[{"runToken": []}],
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["message"],
                                    "properties": {
                                        "message": {"type": "string", "maxLength": 1024}
                                    },
                                }
                            }
                        },
                    },
                )
            },
            "/v1/runs/{run_id}/secrets/{name}": {
                "get": _op(
                    "fetch_secret",
                    "A running workload fetches a secret its server is granted "
                    "(run token with scope secret:NAME); the value is the raw bytes",
                    {"200": {"description": "application/octet-stream, Cache-Control: no-store"}},
                    404,
                    parameters=[
                        _RUN_ID,
                        {
                            "name": "name",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string", "minLength": 1},
                        },
                    ],
                    security=[{"runToken": []}],
                )
            },
            "/v1/audit/verify": {
                "get": _op(
                    "verify_audit",
                    "Verify the audit log (chain, HMACs, signed checkpoints)",
                    {"200": _resp("Intact", obj)},
                    404,
                    409,
                )
            },
            "/v1/approvals": {
                "get": _op(
                    "list_approvals",
                    "Approval requests (optionally ?state=pending&state=denied ...)",
                    {"200": _resp("Approvals", obj)},
                    400,
                    404,
                    parameters=[
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"type": "array", "items": {"type": "string"}},
                            "style": "form",
                            "explode": True,
                        }
                    ],
                )
            },
            "/v1/kill-switch": {
                "get": _op(
                    "get_kill_switch", "The kill switch state", {"200": _resp("State", obj)}, 404
                )
            },
            "/v1/policy/history": {
                "get": _op(
                    "get_policy_history",
                    "Recorded policy versions, newest first",
                    {"200": _resp("History", obj)},
                )
            },
            "/v1/policy": {
                "get": _op(
                    "get_policy",
                    "The effective hash of the loaded policy",
                    {
                        "200": _resp(
                            "Policy",
                            {
                                "type": "object",
                                "required": ["effective_hash"],
                                "properties": {"effective_hash": {"type": "string"}},
                            },
                        )
                    },
                    404,
                )
            },
        },
        "components": {
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "fix"],
                    "properties": {"error": {"type": "string"}, "fix": {"type": "string"}},
                },
                "RunList": {
                    "type": "object",
                    "required": ["runs"],
                    "properties": {"runs": {"type": "array", "items": obj}},
                },
            },
            "securitySchemes": {
                "mutualTLS": {"type": "mutualTLS"},
                "runToken": {"type": "http", "scheme": "bearer", "bearerFormat": "stk1"},
            },
        },
        "security": [{"mutualTLS": []}],
    }
