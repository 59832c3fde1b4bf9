"""Evaluating a query path: in process with regopy, or by an OPA server's Data API."""

from __future__ import annotations

import json
from typing import Any, Protocol

import httpx

from stockade.errors import PolicyError

__all__ = ["OpaError", "OpaEvaluator", "OpaServerEvaluator", "RegoEvaluator", "Undefined"]


class OpaError(PolicyError):
    """OPA could not answer (unreachable, erroring, undefined): callers deny."""


class Undefined(OpaError):
    """The query path has no value for this input."""


class OpaEvaluator(Protocol):
    def evaluate(self, path: str, input_doc: dict[str, Any]) -> object: ...


def _https_or_loopback(url: str) -> bool:
    try:
        u = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return False
    if u.userinfo:
        return False
    if u.scheme == "https":
        return bool(u.host)
    return u.scheme == "http" and u.host in {"127.0.0.1", "localhost", "::1"}


def _check_path(path: str) -> str:
    parts = path.split(".")
    if not parts or not all(p.isidentifier() for p in parts):
        raise OpaError(f"got query path {path!r}, expected dotted identifiers", "")
    return path


class RegoEvaluator:
    """Rego modules evaluated in process by regopy (a fresh interpreter per query)."""

    def __init__(self, modules: dict[str, str], data: dict[str, Any] | None = None) -> None:
        if not modules:
            raise OpaError("no Rego modules given", "name at least one .rego file")
        self._modules = dict(modules)
        self._data = data or {}
        self.evaluate("stockade", {})  # compile now: a module that does not parse fails early

    def evaluate(self, path: str, input_doc: dict[str, Any]) -> object:
        from regopy import Interpreter, RegoError  # type: ignore[import-untyped]

        query = "data." + _check_path(path)
        try:
            rego = Interpreter()
            for name, text in sorted(self._modules.items()):
                rego.add_module(name, text)
            if self._data:
                rego.add_data_json(json.dumps(self._data))
            rego.set_input_term(json.dumps(input_doc))
            out = rego.query(query)
        except RegoError as e:
            raise OpaError(f"Rego evaluation of {query} failed: {e}", "fix the Rego module") from e
        text = str(out)
        if not out.ok() or text.startswith("Errors"):
            raise OpaError(f"Rego evaluation of {query} failed: {text[:500]}", "fix the module")
        if text == "undefined":
            raise Undefined(f"{query} is undefined for this input", "define it in the module")
        try:
            parsed = json.loads(text)
            return parsed["expressions"][0]
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise OpaError(f"cannot read regopy's answer for {query}: {text[:200]}", "") from e


class OpaServerEvaluator:
    """An OPA server's Data API: ``POST {url}/v1/data/<path>`` with ``{"input": ...}``."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 2.0,
        transport: httpx.BaseTransport | None = None,
        token: str | None = None,
    ) -> None:
        if not _https_or_loopback(url):
            raise OpaError(
                f"OPA URL {url!r} is neither https nor loopback",
                "use https, or run OPA beside stockade on loopback",
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.Client(
            base_url=url.rstrip("/"), timeout=timeout_s, transport=transport, headers=headers
        )

    def close(self) -> None:
        self._client.close()

    def evaluate(self, path: str, input_doc: dict[str, Any]) -> object:
        url = "/v1/data/" + _check_path(path).replace(".", "/")
        try:
            r = self._client.post(url, json={"input": input_doc})
        except httpx.HTTPError as e:
            raise OpaError(f"OPA server unreachable at {url}: {e}", "check OPA is running") from e
        if r.status_code != 200:
            raise OpaError(f"OPA answered HTTP {r.status_code} for {url}", "see the OPA logs")
        try:
            body = r.json()
        except ValueError as e:
            raise OpaError(f"OPA answered non-JSON for {url}", "") from e
        if not isinstance(body, dict):
            raise OpaError(f"OPA answered a JSON {type(body).__name__} for {url}", "")
        if "result" not in body:
            raise Undefined(f"{path} is undefined for this input", "define it in the policy")
        return body["result"]
