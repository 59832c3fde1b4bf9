"""Server log messages and resource updates to Streamable HTTP sessions: only the sessions that
asked (a log level at or below the message's; a subscription to that uri) of clients that may see
the server, sanitised and marked untrusted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _httpserve import INIT, free_port, serving

from stockade.gateway import (
    Gateway,
    GatewayConfig,
    HttpTransport,
    PinStore,
    ServerSpec,
    SubprocessLauncher,
)
from stockade.gateway._httpnotes import SessionNotes, session_note
from stockade.models import Decision, ToolCall
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover

NOTES = Path(__file__).parent / "servers" / "notes_server.py"
URI = "test://watched"
TOKENS = {c: f"{c}-token-0123456789abcdef" for c in ("alice", "bob", "carol")}
LOG = "notifications/message"
UPDATED = "notifications/resources/updated"
MARK = "notifications/resources/list_changed"
UNTRUSTED = {"stockade/trust": "untrusted"}


def log(level: str, data: object = "x", logger: object = "s") -> dict[str, Any]:
    params = {"level": level, "data": data, "logger": logger}
    return {"jsonrpc": "2.0", "method": LOG, "params": params}


def updated(uri: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "method": UPDATED, "params": {"uri": uri}}


def ok(rid: int = 1) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "result": {}}


def req(method: str, **params: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}


# -- the pure routing ---------------------------------------------------------------------------


def test_a_note_is_rebuilt_from_known_fields_sanitised_and_marked_untrusted() -> None:
    out = session_note(log("error", "a\x1b[31mb\u202ec", "lg\x1b]0;t\x07"))
    assert out is not None
    params = out["params"]
    assert "\x1b" not in json.dumps(params, ensure_ascii=False)
    assert "\u202e" not in params["data"]
    assert params["_meta"] == UNTRUSTED
    assert set(params) == {"level", "data", "logger", "_meta"}
    obj = session_note(log("info", {"k": ["\x1b[2J"]}))
    assert obj is not None
    assert "\x1b" not in obj["params"]["data"]
    up = session_note({**updated(URI), "params": {"uri": URI, "extra": "\x1b[2J"}})
    assert up == {
        "jsonrpc": "2.0",
        "method": UPDATED,
        "params": {"uri": URI, "_meta": UNTRUSTED},
    }


@pytest.mark.parametrize(
    "msg",
    [
        log("loud"),
        log(["error"]),
        updated(""),
        updated("x" * 5000),
        {"jsonrpc": "2.0", "method": UPDATED, "params": {"uri": 3}},
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {}},
        {"jsonrpc": "2.0", "method": LOG, "params": "error"},
    ],
)
def test_anything_else_is_dropped(msg: dict[str, Any]) -> None:
    assert session_note(msg) is None


def test_a_session_gets_logs_at_or_above_its_level_only_after_setting_one() -> None:
    notes = SessionNotes()
    error, info = session_note(log("error")), session_note(log("info"))
    assert error is not None
    assert info is not None
    assert not notes.wants("s", error)  # no level set: nothing
    notes.ask("s", req("logging/setLevel", level="warning"))(ok())
    assert notes.wants("s", error)
    assert not notes.wants("s", info)
    assert not notes.wants("other", error)


def test_a_refused_request_asks_for_nothing_and_restores_the_level() -> None:
    notes = SessionNotes()
    warn = session_note(log("warning"))
    sub = session_note(updated(URI))
    assert warn is not None
    assert sub is not None
    notes.ask("s", req("logging/setLevel", level="warning"))(ok())
    refused = {"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "no"}}
    notes.ask("s", req("logging/setLevel", level="emergency"))(refused)
    assert notes.wants("s", warn)  # the earlier level stands
    notes.ask("s", req("resources/subscribe", uri=URI))(refused)
    assert not notes.wants("s", sub)
    notes.ask("s", req("resources/subscribe", uri=URI))(None)  # failed or cancelled
    assert not notes.wants("s", sub)


def test_a_subscription_counts_while_asked_and_ends_with_unsubscribe_or_forget() -> None:
    notes = SessionNotes()
    sub = session_note(updated(URI))
    assert sub is not None
    settle = notes.ask("s", req("resources/subscribe", uri=URI))
    assert notes.wants("s", sub)  # held before the answer: an update may come first
    settle(ok())
    assert notes.wants("s", sub)
    assert not notes.wants("t", sub)
    notes.ask("s", req("resources/unsubscribe", uri=URI))(ok())
    assert not notes.wants("s", sub)
    notes.ask("s", req("resources/subscribe", uri=URI))(ok())
    notes.forget("s")
    assert not notes.wants("s", sub)


# -- against a real HTTP client session ------------------------------------------------------------


class NotCarol:
    """Allows the notes server's tool and resource reads to everyone but carol."""

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        if call.client != "carol" and call.tool in ("poke", "resources/read"):
            return Decision.allow(rule="test.allow")
        return Decision.deny("not for this client", rule="test.deny")


class Session:
    def __init__(self, c: httpx.AsyncClient, client: str) -> None:
        self.c = c
        self.client = client
        self.h: dict[str, str] = {}

    async def start(self) -> None:
        resp = await self.c.post("/mcp", json=INIT, headers=self.headers())
        assert resp.status_code == 200
        self.h = {"mcp-session-id": resp.headers["mcp-session-id"]}

    def headers(self, accept: str = "application/json, text/event-stream") -> dict[str, str]:
        return {
            "authorization": f"Bearer {TOKENS[self.client]}",
            "content-type": "application/json",
            "accept": accept,
            **self.h,
        }

    async def ask(self, method: str, **params: Any) -> dict[str, Any]:
        msg = {"jsonrpc": "2.0", "id": 2, "method": method, "params": params}
        resp = await self.c.post("/mcp", json=msg, headers=self.headers("application/json"))
        assert resp.status_code == 200, resp.text
        out: dict[str, Any] = resp.json()
        return out

    @contextlib.asynccontextmanager
    async def stream(self) -> AsyncIterator[AsyncIterator[str]]:
        async with self.c.stream("GET", "/mcp", headers=self.headers("text/event-stream")) as s:
            assert s.status_code == 200
            yield s.aiter_lines()


async def until_marker(lines: AsyncIterator[str]) -> list[dict[str, Any]]:
    """The messages of one stream up to and including the list_changed marker (bounded)."""
    got: list[dict[str, Any]] = []
    while not got or got[-1]["method"] != MARK:
        line = await asyncio.wait_for(anext(lines), 10)
        if line.startswith("data: "):
            got.append(json.loads(line.removeprefix("data: ")))
    return got


@pytest.mark.guarantee("gw-http-notes-routed")
def test_http_sessions_get_only_the_logs_and_updates_they_asked_for(tmp_path: Path) -> None:
    spec = ServerSpec(
        name="notes", command=(sys.executable, str(NOTES), URI), tofu=True, call_timeout_s=10
    )

    async def go() -> dict[str, list[dict[str, Any]]]:
        gw = Gateway(
            GatewayConfig(servers=(spec,), clients=tuple(TOKENS)),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=NotCarol(),
            approver=ScriptedApprover(allow=False),
            audit=MemoryAuditSink(),
            clock=FakeClock(),
        )
        t = HttpTransport(gw, host="127.0.0.1", port=free_port(), tokens=TOKENS)
        await asyncio.wait_for(gw.start(), 20)
        try:
            async with (
                serving(t) as base,
                httpx.AsyncClient(base_url=base, timeout=10) as c,
                contextlib.AsyncExitStack() as stack,
            ):
                names = {"a": "alice", "b": "bob", "c": "alice", "e": "carol"}
                sessions = {k: Session(c, who) for k, who in names.items()}
                lines = {}
                for k, s in sessions.items():
                    await s.start()
                    lines[k] = await stack.enter_async_context(s.stream())
                a, b, c_, e = (sessions[k] for k in "abce")
                assert (await a.ask("logging/setLevel", level="warning"))["result"] == {}
                assert (await a.ask("resources/subscribe", uri=URI))["result"] == {}
                assert (await b.ask("resources/subscribe", uri=URI))["result"] == {}
                assert (await c_.ask("logging/setLevel", level="emergency"))["result"] == {}
                assert (await e.ask("logging/setLevel", level="debug"))["result"] == {}
                assert "error" in await e.ask("resources/subscribe", uri=URI)  # denied to carol
                poked = await a.ask("tools/call", name="notes__poke", arguments={})
                assert "poked" in poked["result"]["content"][0]["text"]
                return {k: await until_marker(v) for k, v in lines.items()}
        finally:
            await gw.close()

    seen = asyncio.run(go())

    def shape(msgs: list[dict[str, Any]]) -> list[str]:
        return [m["params"]["level"] if m["method"] == LOG else m["method"] for m in msgs]

    # alice's first session: warning and above, and every update of its subscription (its own
    # subscribe's, bob's subscribe's: alice holds the uri too, and the poke's)
    assert shape(seen["a"]) == [UPDATED, UPDATED, "warning", "error", "emergency", UPDATED, MARK]
    assert shape(seen["b"]) == [UPDATED, UPDATED, MARK]  # subscribed, no level: no logs
    assert shape(seen["c"]) == ["emergency", MARK]  # alice's other session: no subscription
    assert shape(seen["e"]) == [MARK]  # carol may see nothing of the server, whatever her level
    for m in seen["a"][:-1]:
        assert m["params"]["_meta"] == UNTRUSTED
        assert "\x1b" not in json.dumps(m, ensure_ascii=False)
        assert "\u202e" not in json.dumps(m, ensure_ascii=False)
    logs = [m["params"] for m in seen["a"] if m["method"] == LOG]
    assert logs
    assert all(p["logger"].startswith("notes/core") for p in logs)  # <server>/<logger>, cleaned
    assert [m["params"]["uri"] for m in seen["a"] if m["method"] == UPDATED] == [URI] * 3
