"""The MCP surface beyond tools against the real server-everything: prompts, completion, logging,
progress, resource templates and subscriptions, each decided by policy and sanitised."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import pytest

from stockade.gateway import (
    Gateway,
    GatewayConfig,
    HttpTransport,
    PinStore,
    ServerSpec,
    SubprocessLauncher,
)
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

pytestmark = [pytest.mark.node, pytest.mark.slow]

PROMPTS = "everything__prompts/get"
READ = "everything__resources/read"


def run(
    tmp_path: Path, everything_js: Path, allow: set[str], body: Any
) -> tuple[Any, list[dict[str, Any]], MemoryAuditSink]:
    node = shutil.which("node")
    assert node is not None
    spec = ServerSpec(name="everything", command=(node, str(everything_js), "stdio"), tofu=True)
    notes: list[dict[str, Any]] = []
    sink = MemoryAuditSink()

    async def notify(msg: dict[str, Any]) -> None:
        notes.append(msg)

    async def go() -> Any:
        gw = Gateway(
            GatewayConfig(servers=(spec,), clients=("agent",)),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=StaticDecider(allow=allow),
            approver=ScriptedApprover(allow=False),
            audit=sink,
            clock=FakeClock(),
        )
        gw.set_notifier(notify)
        await asyncio.wait_for(gw.start(), 30)
        try:
            return await asyncio.wait_for(body(gw, notes), 60)
        finally:
            await gw.close()

    return asyncio.run(go()), notes, sink


async def ask(gw: Gateway, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    msg: dict[str, Any] = {"jsonrpc": "2.0", "id": 9, "method": method}
    if params is not None:
        msg["params"] = params
    resp = await gw.handle(msg, client="agent")
    assert resp is not None
    return resp


async def until(notes: list[dict[str, Any]], method: str, limit_s: float = 20) -> dict[str, Any]:
    for _ in range(int(limit_s / 0.05)):  # bounded wait for a notification
        found = [n for n in notes if n.get("method") == method]
        if found:
            return found[0]
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {method} within {limit_s}s")


@pytest.mark.guarantee("gw-prompts-decided")
def test_prompts_are_listed_and_got_only_as_policy_allows_and_come_back_untrusted(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {"init": await ask(gw, "initialize", {})}
        seen["list"] = await ask(gw, "prompts/list")
        seen["simple"] = await ask(gw, "prompts/get", {"name": "everything__simple-prompt"})
        args = {"name": "everything__args-prompt", "arguments": {"city": "Oslo\x1b[31m"}}
        seen["args"] = await ask(gw, "prompts/get", args)
        seen["unknown"] = await ask(gw, "prompts/get", {"name": "everything__no-such-prompt"})
        seen["other"] = await ask(gw, "prompts/get", {"name": "nothere__simple-prompt"})
        seen["badargs"] = await ask(
            gw, "prompts/get", {"name": "everything__args-prompt", "arguments": {"city": 3}}
        )
        return seen

    seen, _, sink = run(tmp_path, everything_js, {PROMPTS}, body)
    assert "prompts" in seen["init"]["result"]["capabilities"]
    names = [p["name"] for p in seen["list"]["result"]["prompts"]]
    assert "everything__simple-prompt" in names
    assert "everything__args-prompt" in names
    simple = seen["simple"]["result"]
    assert simple["_meta"]["stockade/trust"] == "untrusted"
    text = simple["messages"][0]["content"]["text"]
    assert text.startswith('<untrusted-tool-output source="prompt:everything__simple-prompt">')
    args_text = seen["args"]["result"]["messages"][0]["content"]["text"]
    assert "Oslo" in args_text
    assert "\x1b" not in args_text  # the echoed argument is sanitised like any server text
    assert seen["unknown"]["error"]["code"] == -32602
    assert seen["other"]["error"]["code"] == -32602
    assert seen["badargs"]["error"]["code"] == -32602
    calls = [e.data for e in sink.events if e.type == "gateway.call"]
    tools = {c["tool"] for c in calls}
    assert {"prompt:everything__simple-prompt", "prompt:everything__args-prompt"} <= tools


@pytest.mark.guarantee("gw-prompts-decided")
def test_without_a_prompts_rule_no_prompt_is_listed_nor_got(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "list": await ask(gw, "prompts/list"),
            "get": await ask(gw, "prompts/get", {"name": "everything__simple-prompt"}),
            "complete": await ask(
                gw,
                "completion/complete",
                {
                    "ref": {"type": "ref/prompt", "name": "everything__completable-prompt"},
                    "argument": {"name": "department", "value": "E"},
                },
            ),
        }

    seen, _, _ = run(tmp_path, everything_js, {"everything__echo"}, body)
    assert seen["list"]["result"]["prompts"] == []
    assert seen["get"]["error"]["code"] == -32602
    assert seen["complete"]["error"]["code"] == -32602


def test_completion_of_an_allowed_prompt_is_forwarded_and_its_values_sanitised(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        ref = {"type": "ref/prompt", "name": "everything__completable-prompt"}
        return {
            "dept": await ask(
                gw,
                "completion/complete",
                {"ref": ref, "argument": {"name": "department", "value": "E"}},
            ),
            "name": await ask(
                gw,
                "completion/complete",
                {
                    "ref": ref,
                    "argument": {"name": "name", "value": "A"},
                    "context": {"arguments": {"department": "Engineering"}},
                },
            ),
        }

    seen, _, _ = run(tmp_path, everything_js, {PROMPTS}, body)
    assert seen["dept"]["result"]["completion"]["values"] == ["Engineering"]
    assert seen["name"]["result"]["completion"]["values"] == ["Alice"]
    assert seen["dept"]["result"]["_meta"]["stockade/trust"] == "untrusted"


@pytest.mark.guarantee("gw-server-notifications-sanitised")
def test_progress_reaches_the_agent_under_its_own_token_and_logs_arrive_marked_untrusted(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {"level": await ask(gw, "logging/setLevel", {"level": "debug"})}
        seen["bad_level"] = await ask(gw, "logging/setLevel", {"level": "loud"})
        params = {
            "name": "everything__trigger-long-running-operation",
            "arguments": {"duration": 0.2, "steps": 2},
            "_meta": {"progressToken": "agent-token-1"},
        }
        seen["call"] = await ask(gw, "tools/call", params)
        seen["progress"] = await until(notes, "notifications/progress")
        await ask(
            gw, "tools/call", {"name": "everything__toggle-simulated-logging", "arguments": {}}
        )
        seen["log"] = await until(notes, "notifications/message")
        return seen

    allow = {"everything__trigger-long-running-operation", "everything__toggle-simulated-logging"}
    seen, notes, sink = run(tmp_path, everything_js, allow, body)
    assert seen["level"]["result"] == {}
    assert seen["bad_level"]["error"]["code"] == -32602
    assert not seen["call"]["result"]["isError"]
    progress = seen["progress"]["params"]
    assert progress["progressToken"] == "agent-token-1"  # never the gateway's downstream token
    assert all(
        n["params"]["progressToken"] == "agent-token-1"
        for n in notes
        if n["method"] == "notifications/progress"
    )
    log = seen["log"]["params"]
    assert log["logger"].startswith("everything")
    assert log["_meta"]["stockade/trust"] == "untrusted"
    assert isinstance(log["data"], str)
    assert "gateway.log_level" in [e.type for e in sink.events]


def test_resource_templates_are_offered_under_gateway_uris_that_read_back(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        seen = {"templates": await ask(gw, "resources/templates/list")}
        tpls = seen["templates"]["result"]["resourceTemplates"]
        text_tpl = next(t["uriTemplate"] for t in tpls if "{" in t["uriTemplate"])
        filled = text_tpl.split("{")[0] + "1"
        seen["read"] = await ask(gw, "resources/read", {"uri": filled})
        seen["filled"] = filled
        return seen

    seen, _, _ = run(tmp_path, everything_js, {READ}, body)
    tpls = seen["templates"]["result"]["resourceTemplates"]
    assert tpls
    assert all(t["uriTemplate"].startswith("stockade+resource://everything/") for t in tpls)
    contents = seen["read"]["result"]["contents"]
    assert contents
    assert contents[0]["uri"].startswith("stockade+resource://everything/")


@pytest.mark.guarantee("gw-server-notifications-sanitised")
def test_subscriptions_need_a_read_rule_and_a_uri_the_server_offered(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        listing = await ask(gw, "resources/list")
        uri = listing["result"]["resources"][0]["uri"]
        return {
            "sub": await ask(gw, "resources/subscribe", {"uri": uri}),
            "unsub": await ask(gw, "resources/unsubscribe", {"uri": uri}),
            "raw": await ask(gw, "resources/subscribe", {"uri": "test://watched-resource"}),
        }

    seen, _, sink = run(tmp_path, everything_js, {READ}, body)
    assert seen["sub"]["result"] == {}
    assert seen["unsub"]["result"] == {}
    assert seen["raw"]["error"]["code"] == -32602  # server-everything never offered it
    decisions = [e.data["decision"] for e in sink.events if e.type == "gateway.subscribe"]
    assert decisions == ["allow", "allow"]

    async def denied(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        uri = "stockade+resource://everything/demo%3A%2F%2Fresource%2Fstatic%2Fdocument%2Fa.md"
        return await ask(gw, "resources/subscribe", {"uri": uri})

    refused, _, _ = run(tmp_path, everything_js, {"everything__echo"}, denied)
    assert refused["error"]["code"] == -32602


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_raw_uris_server_everything_offered_are_read_and_subscribed_and_others_refused(
    tmp_path: Path, everything_js: Path
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        listing = await ask(gw, "resources/list")
        wrapped = listing["result"]["resources"][0]["uri"]
        raw = unquote(wrapped.removeprefix("stockade+resource://everything/"))
        return {
            "raw": raw,
            "read": await ask(gw, "resources/read", {"uri": raw}),
            "templated": await ask(gw, "resources/read", {"uri": "demo://resource/dynamic/text/1"}),
            "sub": await ask(gw, "resources/subscribe", {"uri": raw}),
            "unsub": await ask(gw, "resources/unsubscribe", {"uri": raw}),
            "unknown": await ask(gw, "resources/subscribe", {"uri": "test://watched-resource"}),
        }

    seen, _, sink = run(tmp_path, everything_js, {READ}, body)
    assert seen["raw"].startswith("demo://resource/")
    assert seen["read"]["result"]["contents"][0]["uri"].startswith(
        "stockade+resource://everything/"
    )
    assert seen["templated"]["result"]["contents"]
    assert seen["sub"]["result"] == {}
    assert seen["unsub"]["result"] == {}
    assert "unknown resource uri" in seen["unknown"]["error"]["message"]
    routed = [e.data for e in sink.events if e.type == "gateway.raw_uri_routed"]
    assert [(e["method"], e["server"]) for e in routed] == [
        ("resources/read", "everything"),
        ("resources/read", "everything"),
        ("resources/subscribe", "everything"),
        ("resources/unsubscribe", "everything"),
    ]
    assert [e.type for e in sink.events].count("gateway.raw_uri_refused") == 1


@pytest.mark.guarantee("gw-server-notifications-sanitised")
def test_over_http_a_call_asking_for_progress_gets_its_own_progress_then_its_answer_as_sse(
    tmp_path: Path, everything_js: Path
) -> None:
    token = "alice-token-0123456789abcdef"  # noqa: S105 - a test credential
    auth = {"authorization": f"Bearer {token}", "accept": "application/json, text/event-stream"}

    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> tuple[str, str, list[Any]]:
        t = HttpTransport(gw, host="127.0.0.1", port=8765, tokens={"agent": token})

        async def everyone(msg: dict[str, Any]) -> None:  # the channel shared by all clients
            notes.append(msg)

        gw.set_notifier(everyone)
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {}},
        }
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=t.app), base_url="http://127.0.0.1:8765"
        ) as c:
            first = await c.post("/mcp", json=init, headers=auth)
            h = {**auth, "mcp-session-id": first.headers["mcp-session-id"]}
            params: dict[str, Any] = {
                "name": "everything__trigger-long-running-operation",
                "arguments": {"duration": 0.2, "steps": 2},
                "_meta": {"progressToken": 77},
            }
            call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
            streamed = await c.post("/mcp", json=call, headers=h)
            bare = {**call, "params": {k: v for k, v in params.items() if k != "_meta"}}
            plain = await c.post("/mcp", json=bare, headers=h)
        events = [
            json.loads(line.removeprefix("data: "))
            for line in streamed.text.splitlines()
            if line.startswith("data: ")
        ]
        return streamed.headers["content-type"], plain.headers["content-type"], events

    allow = {"everything__trigger-long-running-operation"}
    (sse_type, json_type, events), notes, _ = run(tmp_path, everything_js, allow, body)
    assert sse_type.startswith("text/event-stream")
    assert json_type.startswith("application/json")  # no progress asked: a plain JSON answer
    *progress, answer = events
    assert progress
    assert all(e["method"] == "notifications/progress" for e in progress)
    assert all(e["params"]["progressToken"] == 77 for e in progress)
    assert answer["id"] == 2
    assert not answer["result"]["isError"]
    assert not [n for n in notes if n.get("method") == "notifications/progress"]  # call's own
