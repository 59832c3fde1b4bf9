"""OPA delegation: answers map to decisions with reasons; down, erroring or malformed denies."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from stockade import opa
from stockade.models import Category, ToolCall
from stockade.opa import (
    OpaDelegate,
    OpaError,
    OpaInput,
    OpaServerEvaluator,
    RegoEvaluator,
)

REGO = """
package stockade.tool_call
import rego.v1

default decision := {"result": "deny", "reason": "no rule allows this call"}

decision := {"result": "allow", "reason": "alice may fetch"} if {
    input.client == "alice"
    input.tool == "fetch"
    not input.tainted
}

decision := {"result": "require_approval", "reason": "tainted session sends mail",
             "category": "exfiltration"} if {
    input.tool == "send_mail"
    input.tainted
}
"""


def call(client: str = "alice", tool: str = "fetch") -> OpaInput:
    return OpaInput.for_call(
        ToolCall(
            server="web", tool=tool, arguments={"url": "https://example.invalid"}, client=client
        )
    )


def test_public_surface_is_curated() -> None:
    assert sorted(opa.__all__) == sorted(
        n for n in dir(opa) if not n.startswith("_") and n != "annotations"
    )


@pytest.fixture
def rego() -> OpaDelegate:
    return OpaDelegate(RegoEvaluator({"tool_call.rego": REGO}))


def test_rego_in_process_allows_with_its_reason(rego: OpaDelegate) -> None:
    d = rego.decide(call())
    assert (d.kind, d.reason, d.rule) == (
        "allow",
        "alice may fetch",
        "opa:stockade.tool_call.decision",
    )


def test_rego_in_process_sees_client_identity_and_denies_others(rego: OpaDelegate) -> None:
    d = rego.decide(call(client="mallory"))
    assert (d.kind, d.reason) == ("deny", "no rule allows this call")


def test_rego_sees_taint_and_asks_for_approval(rego: OpaDelegate) -> None:
    tainted = call(tool="send_mail").model_copy(update={"tainted": True})
    d = rego.decide(tainted)
    assert d.kind == "require_approval"
    assert d.category is Category.EXFILTRATION


@pytest.mark.guarantee("cp-opa-fail-closed")
def test_an_undefined_question_denies(rego: OpaDelegate) -> None:
    secret = OpaInput(question="secret_access", client="alice", server="web")
    d = rego.decide(secret)
    assert d.kind == "deny"
    assert "undefined" in d.reason


@pytest.mark.guarantee("cp-opa-fail-closed")
def test_a_module_that_does_not_parse_is_refused_at_load() -> None:
    with pytest.raises(OpaError):
        RegoEvaluator({"bad.rego": "package stockade.tool_call\n decision := ((("})


@pytest.mark.guarantee("cp-opa-fail-closed")
@pytest.mark.parametrize(
    "answer",
    [
        True,
        "allow",
        [],
        {"result": "yes"},
        {"result": "allow", "reason": 5},
        {"result": "allow", "admin": True},
        {"result": "require_approval", "reason": "x"},
        {"result": "require_approval", "reason": "x", "category": "nope"},
    ],
)
def test_a_malformed_answer_denies(answer: Any) -> None:
    module = f"package stockade.tool_call\nimport rego.v1\ndecision := {_rego_literal(answer)}\n"
    d = OpaDelegate(RegoEvaluator({"m.rego": module})).decide(call())
    assert d.kind == "deny"
    assert "malformed" in d.reason


def _rego_literal(v: Any) -> str:
    import json

    return json.dumps(v)


# -- OPA server ----------------------------------------------------------------------------


def _server(handler: Any) -> OpaDelegate:
    return OpaDelegate(
        OpaServerEvaluator("http://127.0.0.1:8181", transport=httpx.MockTransport(handler))
    )


def test_an_opa_server_that_allows_is_followed_and_sees_the_input() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"result": {"result": "allow", "reason": "server says"}})

    d = _server(handler).decide(call())
    assert (d.kind, d.reason) == ("allow", "server says")
    assert seen[0].url.path == "/v1/data/stockade/tool_call/decision"
    import json

    body = json.loads(seen[0].content)
    assert body["input"]["client"] == "alice"
    assert body["input"]["arguments"] == {"url": "https://example.invalid"}


@pytest.mark.guarantee("cp-opa-fail-closed")
def test_an_opa_server_that_is_down_denies() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        d = OpaDelegate(OpaServerEvaluator(f"http://127.0.0.1:{port}", timeout_s=2)).decide(call())
    assert d.kind == "deny"
    assert "unreachable" in d.reason


@pytest.mark.guarantee("cp-opa-fail-closed")
@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(500, json={"code": "internal_error"}),
        httpx.Response(200, content=b"not json"),
        httpx.Response(200, json=["x"]),
        httpx.Response(200, json={}),  # undefined
        httpx.Response(200, json={"result": {"result": "maybe"}}),
    ],
)
def test_an_erroring_or_malformed_opa_server_denies(response: httpx.Response) -> None:
    d = _server(lambda _r: response).decide(call())
    assert d.kind == "deny"


@pytest.mark.guarantee("cp-opa-fail-closed")
def test_an_opa_server_timing_out_denies() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    d = _server(handler).decide(call())
    assert d.kind == "deny"
    assert "unreachable" in d.reason


def test_a_non_loopback_plain_http_opa_url_is_refused() -> None:
    with pytest.raises(OpaError, match="loopback"):
        OpaServerEvaluator("http://opa.example.invalid:8181")


def test_probe_reports_an_unreachable_server() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(OpaError):
        _server(handler).probe()


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost.example.invalid:8181",
        "http://127.0.0.1.example.invalid/",
        "http://user@127.0.0.1:8181",
        "ftp://127.0.0.1/",
        "not a url",
    ],
)
def test_lookalike_loopback_opa_urls_are_refused(url: str) -> None:
    with pytest.raises(OpaError, match="loopback"):
        OpaServerEvaluator(url)
