"""Raw (non-gateway) resource uris through the gateway: routed to the one server that offered
them to this client, refused when unknown, ambiguous or denied; per-client subscriptions."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stockade.gateway import Gateway, GatewayConfig, PinStore, ServerSpec, SubprocessLauncher
from stockade.models import Decision, ToolCall
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover

WATCH = Path(__file__).parent / "servers" / "watch_server.py"
URI = "test://watched-resource"
SECRET = "test://secret"  # noqa: S105 - a uri, not a password  # pragma: allowlist secret


class ReadDecider:
    """Allows resources/read on every server except of the uri ``SECRET`` (listing probes, which
    carry no uri, are allowed), so a uri can be listable yet denied outright."""

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        if call.tool == "resources/read" and call.arguments.get("uri") != SECRET:
            return Decision.allow(rule="test.read")
        return Decision.deny("that uri is not readable", rule="test.deny")


def watch(
    tmp_path: Path, name: str, uri: str, template: str = "", *, unlisted: bool = False
) -> ServerSpec:
    log = tmp_path / f"{name}.log"
    return ServerSpec(
        name=name,
        command=(sys.executable, str(WATCH), uri, template, str(log)),
        call_timeout_s=10,
        unlisted_uris="route" if unlisted else "refuse",
    )


Body = Callable[[Gateway, list[dict[str, Any]]], Awaitable[Any]]


def run(
    tmp_path: Path, servers: list[ServerSpec], body: Body, decider: ReadDecider | None = None
) -> tuple[Any, MemoryAuditSink]:
    sink = MemoryAuditSink()
    notes: list[dict[str, Any]] = []

    async def notify(msg: dict[str, Any]) -> None:
        notes.append(msg)

    async def go() -> Any:
        gw = Gateway(
            GatewayConfig(servers=tuple(servers), clients=("agent", "other")),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=decider or ReadDecider(),
            approver=ScriptedApprover(allow=False),
            audit=sink,
            clock=FakeClock(),
        )
        gw.set_notifier(notify)
        await asyncio.wait_for(gw.start(), 20)
        try:
            return await asyncio.wait_for(body(gw, notes), 30)
        finally:
            await gw.close()

    return asyncio.run(go()), sink


async def ask(gw: Gateway, method: str, uri: str, client: str = "agent") -> dict[str, Any]:
    msg = {"jsonrpc": "2.0", "id": 3, "method": method, "params": {"uri": uri}}
    resp = await gw.handle(msg, client=client)
    assert resp is not None
    return resp


async def settle(notes: list[dict[str, Any]], count: int) -> None:
    for _ in range(200):  # bounded wait for notifications already sent
        if len(notes) >= count:
            return
        await asyncio.sleep(0.01)


def downstream(tmp_path: Path, name: str) -> list[str]:
    log = tmp_path / f"{name}.log"
    return log.read_text().splitlines() if log.exists() else []


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_raw_uri_one_server_listed_is_read_and_subscribed_there_only(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        seen = {
            "read": await ask(gw, "resources/read", URI),
            "sub": await ask(gw, "resources/subscribe", URI),
        }
        await settle(notes, 1)
        seen["notes"] = list(notes)
        seen["unsub"] = await ask(gw, "resources/unsubscribe", URI)
        return seen

    spec = [watch(tmp_path, "watch", URI), watch(tmp_path, "else", "test://elsewhere")]
    seen, sink = run(tmp_path, spec, body)
    assert seen["read"]["result"]["contents"][0]["uri"].startswith("stockade+resource://watch/")
    assert seen["sub"]["result"] == {}
    assert seen["unsub"]["result"] == {}
    updates = [n for n in seen["notes"] if n["method"] == "notifications/resources/updated"]
    untrusted = {"stockade/trust": "untrusted"}
    assert updates == [
        {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": URI, "_meta": untrusted},
        }
    ]
    assert downstream(tmp_path, "watch") == [
        f"resources/subscribe {URI}",
        f"resources/unsubscribe {URI}",
    ]
    assert downstream(tmp_path, "else") == []  # never another server's uri
    routed = sink.of_type("gateway.raw_uri_routed")
    assert {e.data["server"] for e in routed} == {"watch"}
    assert [e.data["method"] for e in routed] == [
        "resources/read",
        "resources/subscribe",
        "resources/unsubscribe",
    ]


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_raw_uri_two_servers_offer_is_refused_and_reaches_neither(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            await ask(gw, "resources/subscribe", URI),
            await ask(gw, "resources/read", URI),
            await ask(gw, "resources/subscribe", "test://templated/7"),
        ]

    spec = [watch(tmp_path, "a", URI), watch(tmp_path, "b", URI, "test://templated/{id}")]
    spec.append(watch(tmp_path, "c", "test://c", "test://templated/{n}"))
    answers, sink = run(tmp_path, spec, body)
    for resp in answers:
        assert resp["error"]["code"] == -32602
        assert "several servers" in resp["error"]["message"]
    assert all(downstream(tmp_path, n) == [] for n in "abc")
    refused = sink.of_type("gateway.raw_uri_refused")
    assert len(refused) == 3
    assert "several servers (a, b)" in refused[0].data["reason"]


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_an_unknown_raw_uri_is_refused_and_audited(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            await ask(gw, "resources/subscribe", "test://nobody-offered-this"),
            await ask(gw, "resources/read", "file:///etc/passwd"),
        ]

    answers, sink = run(tmp_path, [watch(tmp_path, "watch", URI)], body)
    for resp in answers:
        assert resp["error"]["code"] == -32602
        assert "unknown resource uri" in resp["error"]["message"]
    assert downstream(tmp_path, "watch") == []
    assert len(sink.of_type("gateway.raw_uri_refused")) == 2


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_raw_uri_the_policy_denies_is_refused_like_its_gateway_uri(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            await ask(gw, "resources/subscribe", SECRET),
            await ask(gw, "resources/read", SECRET),
        ]

    answers, sink = run(tmp_path, [watch(tmp_path, "watch", SECRET)], body)
    assert "stockade denied resources/subscribe" in answers[0]["error"]["message"]
    assert "not readable" in answers[1]["error"]["message"]
    assert downstream(tmp_path, "watch") == []
    assert [e.data["decision"] for e in sink.of_type("gateway.subscribe")] == ["deny"]


@pytest.mark.guarantee("gw-server-notifications-sanitised")
def test_subscriptions_are_per_client_one_cannot_drop_anothers(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {"sub": await ask(gw, "resources/subscribe", URI)}
        await settle(notes, 1)
        notes.clear()
        seen["other_unsub"] = await ask(gw, "resources/unsubscribe", URI, client="other")
        gw._server_notification("watch", "notifications/resources/updated", {"uri": URI})
        gw._server_notification("watch", "notifications/resources/updated", {"uri": "test://x"})
        await settle(notes, 1)
        seen["kept"] = list(notes)
        notes.clear()
        seen["unsub"] = await ask(gw, "resources/unsubscribe", URI)
        gw._server_notification("watch", "notifications/resources/updated", {"uri": URI})
        await asyncio.sleep(0)
        seen["after"] = list(notes)
        return seen

    seen, _ = run(tmp_path, [watch(tmp_path, "watch", URI)], body)
    assert seen["other_unsub"]["result"] == {}
    assert [n["params"]["uri"] for n in seen["kept"]] == [URI]  # still the agent's subscription
    assert seen["after"] == []
    assert downstream(tmp_path, "watch") == [
        f"resources/subscribe {URI}",
        f"resources/unsubscribe {URI}",
    ]


def test_a_clients_own_raw_subscription_can_be_dropped_after_the_server_stops_listing_it(
    tmp_path: Path,
) -> None:
    gone = "test://no-longer-listed"

    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        # as a subscription made while the server still listed the uri leaves it
        gw._subscriptions[("watch", gone)] = {("agent", gone)}
        return {
            "others": await ask(gw, "resources/unsubscribe", gone, client="other"),
            "unsub": await ask(gw, "resources/unsubscribe", gone),
            "left": dict(gw._subscriptions),
        }

    seen, sink = run(tmp_path, [watch(tmp_path, "watch", URI)], body)
    assert "unknown resource uri" in seen["others"]["error"]["message"]  # not its subscription
    assert seen["unsub"]["result"] == {}
    assert seen["left"] == {}
    assert downstream(tmp_path, "watch") == [f"resources/unsubscribe {gone}"]
    assert [e.data["server"] for e in sink.of_type("gateway.raw_uri_routed")] == ["watch"]


class NoReadsOn(ReadDecider):
    """ReadDecider that denies every read (and listing probe) on the servers named."""

    def __init__(self, *servers: str) -> None:
        self.servers = frozenset(servers)

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        if call.server in self.servers:
            return Decision.deny("no reads here", rule="test.no-reads")
        return super().__call__(call, context)


UNLISTED = "test://never-listed"


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_unlisted_uri_goes_to_the_one_opted_in_server_audited_as_unlisted(
    tmp_path: Path,
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        seen = {
            "read": await ask(gw, "resources/read", UNLISTED),
            "sub": await ask(gw, "resources/subscribe", UNLISTED),
            "listed": await ask(gw, "resources/subscribe", URI),
        }
        seen["unsub"] = await ask(gw, "resources/unsubscribe", UNLISTED)
        seen["secret"] = await ask(gw, "resources/subscribe", SECRET)
        return seen

    spec = [watch(tmp_path, "watch", URI), watch(tmp_path, "open", "test://open", unlisted=True)]
    seen, sink = run(tmp_path, spec, body)
    assert 'source="open:resources/read"' in seen["read"]["result"]["contents"][0]["text"]
    assert seen["sub"]["result"] == {}
    assert seen["unsub"]["result"] == {}
    assert "stockade denied resources/subscribe" in seen["secret"]["error"]["message"]
    assert downstream(tmp_path, "open") == [
        f"resources/subscribe {UNLISTED}",
        f"resources/unsubscribe {UNLISTED}",
    ]  # the denied uri never reached it
    assert downstream(tmp_path, "watch") == [f"resources/subscribe {URI}"]  # offered: its owner
    routed = {
        (e.data["uri"], e.data["method"]): e.data for e in sink.of_type("gateway.raw_uri_routed")
    }
    assert routed[(UNLISTED, "resources/read")] == {
        "client": "agent",
        "uri": UNLISTED,
        "method": "resources/read",
        "server": "open",
        "unlisted": True,
    }
    assert routed[(UNLISTED, "resources/subscribe")]["unlisted"] is True
    assert routed[(URI, "resources/subscribe")]["unlisted"] is False
    assert routed[(URI, "resources/subscribe")]["server"] == "watch"


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_unlisted_uri_with_two_opted_in_servers_reaches_neither(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            await ask(gw, "resources/subscribe", UNLISTED),
            await ask(gw, "resources/read", UNLISTED),
        ]

    spec = [
        watch(tmp_path, "a", "test://a", unlisted=True),
        watch(tmp_path, "b", "test://b", unlisted=True),
    ]
    answers, sink = run(tmp_path, spec, body)
    for resp in answers:
        assert "several servers opt in to unlisted uris (a, b)" in resp["error"]["message"]
    assert downstream(tmp_path, "a") == []
    assert downstream(tmp_path, "b") == []
    assert len(sink.of_type("gateway.raw_uri_refused")) == 2
    assert sink.of_type("gateway.raw_uri_routed") == []


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_opted_in_server_whose_policy_denies_the_client_reads_is_no_candidate(
    tmp_path: Path,
) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        return await ask(gw, "resources/subscribe", UNLISTED)

    spec = [
        watch(tmp_path, "a", "test://a", unlisted=True),
        watch(tmp_path, "b", "test://b", unlisted=True),
    ]
    resp, sink = run(tmp_path, spec, body, NoReadsOn("b"))
    assert resp["result"] == {}
    assert downstream(tmp_path, "a") == [f"resources/subscribe {UNLISTED}"]
    assert downstream(tmp_path, "b") == []
    assert [e.data["server"] for e in sink.of_type("gateway.raw_uri_routed")] == ["a"]
    # the only opted-in server denies this client reads: refused as unknown, nothing reaches it
    resp, _ = run(tmp_path, spec[1:], body, NoReadsOn("b"))
    assert "unknown resource uri" in resp["error"]["message"]
    assert downstream(tmp_path, "b") == []


def test_a_server_without_the_opt_in_refuses_unlisted_uris(tmp_path: Path) -> None:
    async def body(gw: Gateway, notes: list[dict[str, Any]]) -> dict[str, Any]:
        return await ask(gw, "resources/subscribe", UNLISTED)

    resp, _ = run(tmp_path, [watch(tmp_path, "open", "test://open")], body)
    assert "unknown resource uri" in resp["error"]["message"]
    assert downstream(tmp_path, "open") == []
