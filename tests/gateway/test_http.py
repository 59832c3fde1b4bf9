"""Streamable HTTP transport: bind rules, DNS-rebinding defence, auth, sessions, bounds."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _httpserve import INIT, free_port, serving

from stockade.gateway import (
    ConfigError,
    Gateway,
    GatewayConfig,
    HttpTransport,
    PinStore,
    ServerSpec,
    SubprocessLauncher,
    check_bind,
)
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

TOKEN = "alice-token-0123456789abcdef"  # noqa: S105 - a test credential
PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"


def headers(**extra: str) -> dict[str, str]:
    return {
        "authorization": f"Bearer {TOKEN}",
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        **extra,
    }


def with_http(
    tmp_path: Path,
    spec: ServerSpec,
    body: Callable[[httpx.AsyncClient], Awaitable[Any]],
    keep: list[HttpTransport] | None = None,
    **cfg: Any,
) -> Any:
    async def go() -> Any:
        gw = Gateway(
            GatewayConfig(servers=(spec,), clients=("alice",), **cfg),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=StaticDecider(allow={"evil__echo"}),
            approver=ScriptedApprover(allow=False),
            audit=MemoryAuditSink(),
            clock=FakeClock(),
        )
        t = HttpTransport(gw, host="127.0.0.1", port=PORT, tokens={"alice": TOKEN})
        if keep is not None:
            keep.append(t)
        await asyncio.wait_for(gw.start(), 20)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=t.app), base_url=BASE
            ) as c:
                return await asyncio.wait_for(body(c), 30)
        finally:
            await gw.close()

    return asyncio.run(go())


@pytest.mark.guarantee("gw-http-loopback-only")
@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com", "10.0.0.1"])  # noqa: S104
def test_non_loopback_binds_are_refused_without_tls(host: str) -> None:
    with pytest.raises(ConfigError):
        check_bind(host, 8080)


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "localhost", "127.0.0.2"])
def test_loopback_binds_are_accepted(host: str) -> None:
    check_bind(host, 8080)


def test_a_full_session_lists_and_calls(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        r = await c.post("/mcp", json=INIT, headers=headers())
        assert r.status_code == 200
        sid = r.headers["mcp-session-id"]
        r = await c.post(
            "/mcp",
            json={"jsonrpc": "2.0", "method": "notifications/initialized"},
            headers=headers(**{"mcp-session-id": sid}),
        )
        assert r.status_code == 202
        r = await c.post(
            "/mcp",
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
            headers=headers(**{"mcp-session-id": sid}),
        )
        assert [t["name"] for t in r.json()["result"]["tools"]] == ["evil__echo"]
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "evil__echo", "arguments": {"message": "hi"}},
        }
        r = await c.post("/mcp", json=call, headers=headers(**{"mcp-session-id": sid}))
        assert "Echo: hi" in r.json()["result"]["content"][0]["text"]
        assert (
            await c.delete("/mcp", headers=headers(**{"mcp-session-id": sid}))
        ).status_code == 204
        r = await c.post("/mcp", json=call, headers=headers(**{"mcp-session-id": sid}))
        assert r.status_code == 404

    with_http(tmp_path, evil_spec(tofu=True), body)


@pytest.mark.guarantee("gw-http-dns-rebinding")
@pytest.mark.parametrize(
    ("extra", "status"),
    [
        ({"host": "evil.example:8765"}, 421),
        ({"host": "127.0.0.1:9999"}, 421),
        ({"origin": "http://evil.example"}, 403),
        ({"origin": "http://127.0.0.1:9999"}, 403),
        ({"origin": "null"}, 403),
    ],
)
def test_foreign_hosts_and_origins_are_refused(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec], extra: dict[str, str], status: int
) -> None:
    async def body(c: httpx.AsyncClient) -> int:
        return (await c.post("/mcp", json=INIT, headers=headers(**extra))).status_code

    assert with_http(tmp_path, evil_spec(tofu=True), body) == status


@pytest.mark.guarantee("gw-http-auth")
@pytest.mark.parametrize("auth", [None, "Bearer wrong-token-0000000000", "Basic YTpi", "Bearer "])
def test_requests_without_a_valid_token_are_refused(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec], auth: str | None
) -> None:
    async def body(c: httpx.AsyncClient) -> int:
        h = headers()
        del h["authorization"]
        if auth is not None:
            h["authorization"] = auth
        return (await c.post("/mcp", json=INIT, headers=h)).status_code

    assert with_http(tmp_path, evil_spec(tofu=True), body) == 401


@pytest.mark.guarantee("gw-http-auth")
def test_a_session_id_alone_is_not_authentication(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(c: httpx.AsyncClient) -> tuple[int, int]:
        sid = (await c.post("/mcp", json=INIT, headers=headers())).headers["mcp-session-id"]
        h = headers(**{"mcp-session-id": sid})
        del h["authorization"]
        no_token = await c.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=h
        )
        missing = await c.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers()
        )
        return no_token.status_code, missing.status_code

    assert with_http(tmp_path, evil_spec(tofu=True), body) == (401, 400)


@pytest.mark.guarantee("gw-bounded-messages")
def test_oversized_and_malformed_bodies_are_refused(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(c: httpx.AsyncClient) -> tuple[int, int, int, int]:
        big = await c.post("/mcp", content=b"{" + b" " * 5000 + b"}", headers=headers())
        bad = await c.post("/mcp", content=b"{nope", headers=headers())
        ctype = await c.post(
            "/mcp", content=b"{}", headers=headers(**{"content-type": "text/plain"})
        )
        get = await c.get("/mcp", headers=headers(accept="application/json"))
        return big.status_code, bad.status_code, ctype.status_code, get.status_code

    assert with_http(tmp_path, evil_spec(tofu=True), body, max_message_bytes=2048) == (
        413,
        400,
        415,
        406,  # a GET stream must accept text/event-stream
    )


def test_the_transport_refuses_short_or_missing_tokens(tmp_path: Path) -> None:
    gw = Gateway(
        GatewayConfig(),
        pins=PinStore(tmp_path),
        launcher=SubprocessLauncher(),
        decider=StaticDecider(),
        approver=ScriptedApprover(allow=False),
        audit=MemoryAuditSink(),
        clock=FakeClock(),
    )
    with pytest.raises(ConfigError):
        HttpTransport(gw, host="127.0.0.1", port=PORT, tokens={})
    with pytest.raises(ConfigError):
        HttpTransport(gw, host="127.0.0.1", port=PORT, tokens={"a": "short"})


MODERN = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}


@pytest.mark.guarantee("gw-http-auth")
def test_the_stateless_era_needs_no_session_but_header_and_body_must_agree(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(c: httpx.AsyncClient) -> None:
        disc = await c.post(
            "/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "server/discover"}, headers=headers()
        )
        assert "2026-07-28" in disc.json()["result"]["supportedVersions"]
        listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": MODERN}}
        ok = await c.post(
            "/mcp", json=listing, headers=headers(**{"mcp-protocol-version": "2026-07-28"})
        )
        result = ok.json()["result"]
        assert [t["name"] for t in result["tools"]] == ["evil__echo"]
        assert result["resultType"] == "complete"
        assert result["cacheScope"] == "private"
        mismatch = await c.post(
            "/mcp", json=listing, headers=headers(**{"mcp-protocol-version": "2025-11-25"})
        )
        assert mismatch.status_code == 400
        missing = await c.post("/mcp", json=listing, headers=headers())
        assert missing.status_code == 400
        h = headers(**{"mcp-protocol-version": "2026-07-28"})
        del h["authorization"]
        assert (await c.post("/mcp", json=listing, headers=h)).status_code == 401

    with_http(tmp_path, evil_spec(tofu=True), body)


def make_gateway(tmp_path: Path, sink: MemoryAuditSink, clients: tuple[str, ...]) -> Gateway:
    return Gateway(
        GatewayConfig(clients=clients),
        pins=PinStore(tmp_path),
        launcher=SubprocessLauncher(),
        decider=StaticDecider(),
        approver=ScriptedApprover(allow=False),
        audit=sink,
        clock=FakeClock(),
    )


@pytest.mark.guarantee("gw-http-unsafe-no-auth-audited")
def test_unsafe_no_auth_takes_a_tokenless_request_as_the_named_client_and_audits_it(
    tmp_path: Path,
) -> None:
    sink = MemoryAuditSink()
    gw = make_gateway(tmp_path, sink, ("tester",))
    t = HttpTransport(gw, host="127.0.0.1", port=PORT, tokens={}, unsafe_no_auth_client="tester")
    assert [e.type for e in sink.events][:1] == ["gateway.unsafe_no_auth"]

    async def go() -> tuple[int, int, str | None]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=t.app), base_url=BASE) as c:
            h = headers()
            del h["authorization"]
            anon = await c.post("/mcp", json=INIT, headers=h)
            wrong = await c.post(
                "/mcp", json=INIT, headers=headers(authorization="Bearer wrong-token-xxxxxxxx")
            )
            return anon.status_code, wrong.status_code, anon.headers.get("mcp-session-id")

    anon, wrong, sid = asyncio.run(go())
    assert anon == 200
    assert sid
    assert wrong == 401  # a token that is present is still checked
    assert "gateway.unsafe_no_auth_request" in [e.type for e in sink.events]


def test_unsafe_no_auth_needs_a_client_the_policy_knows(tmp_path: Path) -> None:
    gw = make_gateway(tmp_path, MemoryAuditSink(), ("tester",))
    with pytest.raises(ConfigError, match="not one the policy knows"):
        HttpTransport(gw, host="127.0.0.1", port=PORT, tokens={}, unsafe_no_auth_client="other")
    with pytest.raises(ConfigError):
        HttpTransport(gw, host="192.168.1.1", port=PORT, tokens={}, unsafe_no_auth_client="tester")


def test_an_http_client_cancels_its_own_in_flight_call_and_gets_no_answer(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(c: httpx.AsyncClient) -> tuple[int, int, int, str]:
        init = await c.post("/mcp", json=INIT, headers=headers())
        h = headers(**{"mcp-session-id": init.headers["mcp-session-id"]})
        call = {
            "jsonrpc": "2.0",
            "id": 41,
            "method": "tools/call",
            "params": {"name": "evil__echo", "arguments": {"message": "never answered"}},
        }
        pending = asyncio.ensure_future(c.post("/mcp", json=call, headers=h))
        for _ in range(200):  # bounded: until the call is in flight
            if pending.done() or t_inflight():
                break
            await asyncio.sleep(0.01)
        other = headers()  # the same client without the session: cannot cancel it
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled"}
        cancel["params"] = {"requestId": 41}  # type: ignore[assignment]
        foreign = await c.post("/mcp", json=cancel, headers=other)
        still = t_inflight()
        ok = await c.post("/mcp", json=cancel, headers=h)
        answered = await asyncio.wait_for(pending, 10)
        return foreign.status_code, ok.status_code, answered.status_code, str(still)

    transports: list[HttpTransport] = []

    def t_inflight() -> bool:
        return bool(transports and transports[0]._inflight)

    foreign, ok, answered, still = with_http(
        tmp_path, evil_spec("slow", tofu=True, call_timeout_s=30), body, transports
    )
    assert foreign == 400  # no session: refused before it could reach anything
    assert still == "True"
    assert ok == 202
    assert answered == 204  # cancelled: no JSON-RPC answer


@pytest.mark.slow
@pytest.mark.guarantee("gw-server-notifications-sanitised")
def test_a_get_stream_receives_list_changed_when_a_rug_pull_hides_a_tool(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def go() -> tuple[list[str], list[str]]:
        gw = Gateway(
            GatewayConfig(servers=(evil_spec("rugpull", tofu=True),), clients=("alice",)),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=StaticDecider(allow={"evil__echo"}),
            approver=ScriptedApprover(allow=False),
            audit=MemoryAuditSink(),
            clock=FakeClock(),
        )
        t = HttpTransport(gw, host="127.0.0.1", port=free_port(), tokens={"alice": TOKEN})
        await asyncio.wait_for(gw.start(), 20)
        events: list[str] = []
        try:
            async with serving(t) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
                init = await c.post("/mcp", json=INIT, headers=headers())
                h = headers(**{"mcp-session-id": init.headers["mcp-session-id"]})
                sse = {**h, "accept": "text/event-stream"}
                async with c.stream("GET", "/mcp", headers=sse) as stream:
                    assert stream.status_code == 200
                    call = {
                        "jsonrpc": "2.0",
                        "id": 2,
                        "method": "tools/call",
                        "params": {"name": "evil__echo", "arguments": {"message": "x"}},
                    }
                    await c.post("/mcp", json=call, headers=h)  # the server rug-pulls after it
                    lines = stream.aiter_lines()
                    while not any("list_changed" in e for e in events):
                        events.append(await asyncio.wait_for(anext(lines), 10))
                after = await c.post(
                    "/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "tools/list"}, headers=h
                )
                tools = [x["name"] for x in after.json()["result"]["tools"]]
        finally:
            await gw.close()
        return events, tools

    events, tools = asyncio.run(go())
    data = [e for e in events if e.startswith("data: ")]
    assert data == ['data: {"jsonrpc":"2.0","method":"notifications/tools/list_changed"}']
    assert "evil__echo" not in tools  # hidden until the changed definition is approved
