"""Elicitation over Streamable HTTP (2025-11-25 sessions): the question travels on the call's SSE
stream; the answer comes back as a POST of the same session, matched by our own request id.

The real gateway and :class:`HttpTransport` are served by uvicorn on a loopback port
(``_httpserve.serving``) in front of the SDK echo server, a resource server and a prompt server;
the decider asks for a config_change approval (any call, read or get), or an exfiltration approval
when the message starts with ``leak``. The policy side lets config_change be asked in form mode and
operator-only categories in URL mode.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from _httpserve import free_port, serving
from mcp import Client, MCPError, types
from mcp.client.streamable_http import streamable_http_client

from stockade.approvals import (
    OPERATOR_ONLY,
    ApprovalStore,
    ElicitationChannel,
    ElicitMode,
    State,
    StoreApprover,
)
from stockade.gateway import (
    Gateway,
    GatewayConfig,
    HttpTransport,
    PinStore,
    ServerSpec,
    SubprocessLauncher,
)
from stockade.models import Category, Decision, SystemClock, ToolCall
from stockade.testing import MemoryAuditSink

pytestmark = pytest.mark.slow


ECHO = Path(__file__).parent / "servers" / "sdk_echo.py"
WATCH = Path(__file__).parent / "servers" / "watch_server.py"  # reads answer "watched text"
PROMPTS = Path(__file__).parent / "servers" / "prompt_server.py"  # greet: "Say hello to ..."
LOG = "/dev/null"  # the watch server's subscription log: unused here
TOKEN = "alice-token-0123456789abcdef"  # noqa: S105 - a test credential
TOKEN_B = "bob-token-0123456789abcdef01"  # noqa: S105 - a test credential
PAGE = "http://127.0.0.1:9/approvals"
FORM: frozenset[ElicitMode] = frozenset({"form"})
URL: frozenset[ElicitMode] = frozenset({"url"})


def asks_approval(call: ToolCall, context: Any) -> Decision:
    """config_change for any call; exfiltration when the message starts with ``leak``."""
    if str(call.arguments.get("message", "")).startswith("leak"):
        return Decision.require_approval("sends data out", Category.EXFILTRATION, rule="t")
    return Decision.require_approval("changes config", Category.CONFIG_CHANGE, rule="t")


@dataclass
class Served:
    url: str
    store: ApprovalStore
    sink: MemoryAuditSink


@asynccontextmanager
async def serve(
    tmp_path: Path, *, approval_s: float = 4.0, ask_s: float = 10.0
) -> AsyncIterator[Served]:
    clock = SystemClock()
    sink = MemoryAuditSink()
    store = ApprovalStore(tmp_path / "runs.db", audit=sink)
    channel = ElicitationChannel(
        store,
        clock,
        allowed=lambda c: URL if c in OPERATOR_ONLY else FORM,
        page_url=PAGE,
        timeout_s=ask_s,
    )
    approver = StoreApprover(
        store,
        clock,
        policy_hash=lambda: "sha256:" + "a" * 64,
        timeout_for=lambda c: approval_s,
        poll_s=0.05,
        margin_s=0.5,
        channel=channel,
    )
    specs = (
        ServerSpec(name="cfg", command=(sys.executable, str(ECHO)), tofu=True),
        ServerSpec(name="docs", command=(sys.executable, str(WATCH), "docs://readme", "", LOG)),
        ServerSpec(name="prompts", command=(sys.executable, str(PROMPTS)), tofu=True),
    )
    gw = Gateway(
        GatewayConfig(servers=specs, clients=("alice", "bob"), approval_timeout_s=approval_s),
        pins=PinStore(tmp_path / "pins"),
        launcher=SubprocessLauncher(),
        decider=asks_approval,
        approver=approver,
        audit=sink,
        clock=clock,
    )
    t = HttpTransport(
        gw,
        host="127.0.0.1",
        port=free_port(),
        tokens={"alice": TOKEN, "bob": TOKEN_B},
        channel=channel,
    )
    await asyncio.wait_for(gw.start(), 30)
    try:
        async with serving(t) as base:
            yield Served(f"{base}/mcp", store, sink)
    finally:
        await gw.close()


ERAS = pytest.mark.parametrize("era", ["legacy", "2026-07-28"])


Act = Callable[[Client], Awaitable[Any]]


def sdk_call(
    tmp_path: Path,
    answer: str | None,
    message: str,
    era: str = "legacy",
    *,
    act: Act | None = None,
    **kw: Any,
) -> tuple[Any, list[dict[str, Any]], list[Any]]:
    """The call (or ``act``'s request; a refusal as its ``MCPError``) over HTTP, the questions
    the client got, and the approval requests in the store."""
    asked: list[dict[str, Any]] = []

    async def on_elicit(context: Any, params: Any) -> types.ElicitResult | types.ErrorData:
        asked.append(params.model_dump(by_alias=True, exclude_none=True))
        if answer == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    async def go() -> tuple[Any, list[Any]]:
        async with serve(tmp_path, **kw) as srv:
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with (
                httpx2.AsyncClient(headers=auth, timeout=30) as http,
                Client(
                    streamable_http_client(srv.url, http_client=http),
                    mode=era,
                    read_timeout_seconds=30,
                    elicitation_callback=on_elicit if answer is not None else None,
                ) as client,
            ):
                await client.list_tools()
                result: Any
                if act is None:
                    result = await client.call_tool("cfg__echo", {"message": message})
                else:
                    try:
                        result = await act(client)
                    except MCPError as e:  # a refused read or get is a JSON-RPC error
                        result = e
            return result, srv.store.list(now=SystemClock().now())

    result, requests = asyncio.run(asyncio.wait_for(go(), 90))
    return result, asked, requests


def text(result: types.CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@pytest.mark.guarantee("apr-elicit-http")
@ERAS
def test_an_exfiltration_call_over_http_gets_only_url_mode_and_the_answer_decides_nothing(
    tmp_path: Path, era: str
) -> None:
    result, asked, requests = sdk_call(tmp_path, "accept", "leak it", era, approval_s=3.0)
    assert [a["mode"] for a in asked] == ["url"]
    assert asked[0]["url"].startswith(PAGE + "/#req-apr_")
    assert result.is_error
    assert [r.state for r in requests] == [State.EXPIRED]


async def _call(client: Client) -> str:
    return text(await client.call_tool("cfg__echo", {"message": "hello"}))


async def _read(client: Client) -> str:
    (resource,) = (await client.list_resources()).resources
    got = await client.read_resource(resource.uri)
    return " ".join(getattr(c, "text", "") for c in got.contents)


async def _get(client: Client) -> str:
    got = await client.get_prompt("prompts__greet", {"who": "bob"})
    return " ".join(getattr(m.content, "text", "") for m in got.messages)


KINDS = pytest.mark.parametrize(
    ("act", "expect"),
    [(_call, "Echo: hello"), (_read, "watched text"), (_get, "Say hello to bob.")],
    ids=["tools/call", "resources/read", "prompts/get"],
)


@pytest.mark.guarantee("apr-elicit-http")
@pytest.mark.guarantee("apr-elicit-reads-prompts")
@ERAS
@KINDS
def test_a_form_accept_over_http_approves_a_config_change_call_read_or_get_and_it_runs(
    tmp_path: Path, era: str, act: Act, expect: str
) -> None:
    result, asked, requests = sdk_call(tmp_path, "accept", "", era, act=act)
    assert [a["mode"] for a in asked] == ["form"]
    assert expect in result
    (req,) = requests
    assert (req.state, req.channel, req.decided_by) == (
        State.CONSUMED,
        "elicitation",
        "client:alice",
    )


@pytest.mark.guarantee("apr-elicit-http")
@pytest.mark.guarantee("apr-elicit-reads-prompts")
@ERAS
@KINDS
def test_a_form_decline_over_http_denies_the_call_read_or_get(
    tmp_path: Path, era: str, act: Act, expect: str
) -> None:
    result, asked, requests = sdk_call(tmp_path, "decline", "", era, act=act)
    assert len(asked) == 1
    assert "form elicitation: decline" in str(result)  # an error result, or a JSON-RPC error
    assert expect not in str(result)
    assert [r.state for r in requests] == [State.DENIED]


@pytest.mark.guarantee("apr-elicit-channel-capability")
def test_an_http_client_without_the_capability_is_never_asked(tmp_path: Path) -> None:
    result, asked, requests = sdk_call(tmp_path, None, "hello", approval_s=3.0)
    assert asked == []
    assert result.is_error
    assert [r.state for r in requests] == [State.EXPIRED]


# -- the answer's path, raw: only the asking session's own open question may be answered -------


def headers(token: str = TOKEN, sid: str | None = None, **extra: str) -> dict[str, str]:
    h = {
        "authorization": f"Bearer {token}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        **extra,
    }
    if sid is not None:
        h["mcp-session-id"] = sid
    return h


async def session(c: httpx.AsyncClient, url: str, token: str = TOKEN) -> str:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {"elicitation": {"form": {}}},
            "clientInfo": {"name": "raw", "version": "1"},
        },
    }
    r = await c.post(url, json=init, headers=headers(token))
    assert r.status_code == 200, r.text
    return r.headers["mcp-session-id"]


def reply(rid: object, approve: bool = True) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": rid,
        "result": {"action": "accept", "content": {"approve": approve}},
    }


async def events(stream: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    async for line in stream.aiter_lines():
        if line.startswith("data: "):
            yield json.loads(line[6:])


@pytest.mark.guarantee("apr-elicit-http-answer-bound")
def test_an_answer_from_another_session_or_a_forged_or_replayed_id_is_refused(
    tmp_path: Path,
) -> None:
    async def go() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with serve(tmp_path) as srv, httpx.AsyncClient(timeout=30) as c:
            mine = await session(c, srv.url)
            other = await session(c, srv.url)  # the same client, another session
            bobs = await session(c, srv.url, TOKEN_B)
            call = {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "tools/call",
                "params": {"name": "cfg__echo", "arguments": {"message": "hi"}},
            }
            async with c.stream("POST", srv.url, json=call, headers=headers(sid=mine)) as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                messages = events(stream)
                question = await asyncio.wait_for(anext(messages), 20)
                assert question["method"] == "elicitation/create"
                rid = question["id"]
                attempts = {
                    "other session": (headers(sid=other), reply(rid)),
                    "other client": (headers(TOKEN_B, sid=bobs), reply(rid)),
                    "forged id": (headers(sid=mine), reply("stockade-1")),
                    "no session": (headers(), reply(rid)),
                }
                for name, (h, body) in attempts.items():
                    seen[name] = (await c.post(srv.url, json=body, headers=h)).status_code
                seen["pending"] = srv.store.list(now=SystemClock().now())[0].state
                seen["answer"] = (
                    await c.post(srv.url, json=reply(rid), headers=headers(sid=mine))
                ).status_code
                seen["replay"] = (
                    await c.post(srv.url, json=reply(rid, False), headers=headers(sid=mine))
                ).status_code
                seen["final"] = await asyncio.wait_for(anext(messages), 20)
            seen["refusals"] = [
                e for e in srv.sink.events if e.type == "gateway.elicitation_refused"
            ]
        return seen

    seen = asyncio.run(asyncio.wait_for(go(), 90))
    assert seen["other session"] == 400
    assert seen["other client"] in (400, 404)
    assert seen["forged id"] == 400
    assert seen["no session"] == 400
    assert seen["pending"] == State.PENDING
    assert seen["answer"] == 202
    assert seen["replay"] == 400
    assert seen["final"]["id"] == 7
    assert not seen["final"]["result"].get("isError"), seen["final"]
    assert len(seen["refusals"]) >= 3


@pytest.mark.guarantee("apr-elicit-http")
def test_an_unanswered_question_over_http_denies_within_the_bound(tmp_path: Path) -> None:
    async def go() -> dict[str, Any]:
        async with serve(tmp_path, ask_s=1.0) as srv, httpx.AsyncClient(timeout=30) as c:
            sid = await session(c, srv.url)
            call = {
                "jsonrpc": "2.0",
                "id": 9,
                "method": "tools/call",
                "params": {"name": "cfg__echo", "arguments": {"message": "hi"}},
            }
            async with c.stream("POST", srv.url, json=call, headers=headers(sid=sid)) as stream:
                got = [m async for m in events(stream)]
            late = await c.post(srv.url, json=reply(got[0]["id"]), headers=headers(sid=sid))
            return {"got": got, "late": late.status_code}

    seen = asyncio.run(asyncio.wait_for(go(), 90))
    question, final = seen["got"]
    assert question["method"] == "elicitation/create"
    assert final["id"] == 9
    assert final["result"]["isError"]
    assert "form elicitation: error" in final["result"]["content"][0]["text"]
    assert seen["late"] == 400


@pytest.mark.guarantee("apr-mrtr-served")
def test_over_http_a_2026_state_opens_only_for_its_own_client_and_intact(tmp_path: Path) -> None:
    def call(retry: dict[str, Any] | None = None) -> dict[str, Any]:
        meta = {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
        }
        params = {"name": "cfg__echo", "arguments": {"message": "hi"}, "_meta": meta}
        return {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {**params, **(retry or {})},
        }

    async def go() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with serve(tmp_path) as srv, httpx.AsyncClient(timeout=30) as c:
            modern = {"mcp-protocol-version": "2026-07-28"}
            first = (await c.post(srv.url, json=call(), headers=headers(**modern))).json()
            seen["first"] = first["result"]
            state = first["result"]["requestState"]
            good = {
                "requestState": state,
                "inputResponses": {"stockade_approval": reply(0)["result"]},
            }
            bad = {**good, "requestState": state[:-2] + ("AA" if state[-2:] != "AA" else "BB")}
            for name, token, retry in (("bob", TOKEN_B, good), ("tampered", TOKEN, bad)):
                r = await c.post(srv.url, json=call(retry), headers=headers(token, **modern))
                seen[name] = r.json()["result"]
            seen["pending"] = srv.store.list(now=SystemClock().now())[0].state
            r = await c.post(srv.url, json=call(good), headers=headers(**modern))
            seen["good"] = r.json()["result"]
        return seen

    seen = asyncio.run(asyncio.wait_for(go(), 90))
    assert seen["first"]["resultType"] == "input_required"
    assert seen["bob"]["isError"]
    assert "another client" in seen["bob"]["content"][0]["text"]
    assert seen["tampered"]["isError"]
    assert "altered" in seen["tampered"]["content"][0]["text"]
    assert seen["pending"] == State.PENDING
    assert not seen["good"].get("isError"), seen["good"]


@pytest.mark.guarantee("apr-elicit-reads-prompts")
@pytest.mark.guarantee("apr-mrtr-served")
def test_over_http_a_2026_state_of_a_resource_read_opens_only_for_that_read(
    tmp_path: Path,
) -> None:
    meta = {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
    }

    def rpc(method: str, params: dict[str, Any], retry: dict[str, Any] | None = None) -> Any:
        body = {"jsonrpc": "2.0", "id": 4, "method": method}
        return {**body, "params": {**params, "_meta": meta, **(retry or {})}}

    async def go() -> dict[str, Any]:
        seen: dict[str, Any] = {}
        async with serve(tmp_path) as srv, httpx.AsyncClient(timeout=30) as c:
            h = headers(**{"mcp-protocol-version": "2026-07-28"})
            listed = (await c.post(srv.url, json=rpc("resources/list", {}), headers=h)).json()
            read = {"uri": listed["result"]["resources"][0]["uri"]}
            first = (await c.post(srv.url, json=rpc("resources/read", read), headers=h)).json()
            seen["first"] = first["result"]
            retry = {
                "requestState": first["result"]["requestState"],
                "inputResponses": {"stockade_approval": reply(0)["result"]},
            }
            get = {"name": "prompts__greet", "arguments": {"who": "bob"}}
            moved = await c.post(srv.url, json=rpc("prompts/get", get, retry), headers=h)
            seen["moved"] = moved.json()
            seen["pending"] = srv.store.list(now=SystemClock().now())[0].state
            own = await c.post(srv.url, json=rpc("resources/read", read, retry), headers=h)
            seen["own"] = own.json()["result"]
        return seen

    seen = asyncio.run(asyncio.wait_for(go(), 90))
    assert seen["first"]["resultType"] == "input_required"
    question = seen["first"]["inputRequests"]["stockade_approval"]["params"]
    assert "may be read" in question["message"]
    assert "different call" in seen["moved"]["error"]["message"]  # the prompt was not fetched
    assert seen["pending"] == State.PENDING  # and the read's request was left as it was
    assert seen["own"]["resultType"] == "complete"
    assert "watched text" in seen["own"]["contents"][0]["text"]
