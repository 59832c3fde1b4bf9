"""The stdio transport sends elicitation/create to the agent and routes its answer back."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from stockade.approvals import ApprovalStore, State
from stockade.approvals._elicit import ElicitMode
from stockade.approvals._elicit_channel import ElicitationChannel
from stockade.gateway import Gateway, GatewayConfig, PinStore, SubprocessLauncher
from stockade.gateway._jsonrpc import encode
from stockade.gateway._stdio import serve_streams
from stockade.models import Category
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

from .conftest import make_call, make_request

FORM: frozenset[ElicitMode] = frozenset({"form"})


def gateway(tmp_path: Path, clock: FakeClock) -> Gateway:
    return Gateway(
        GatewayConfig(servers=(), clients=("agent",)),
        pins=PinStore(tmp_path / "pins"),
        launcher=SubprocessLauncher(),
        decider=StaticDecider(allow=set()),
        approver=ScriptedApprover(allow=False),
        audit=MemoryAuditSink(),
        clock=clock,
    )


def converse(
    tmp_path: Path,
    store: ApprovalStore,
    clock: FakeClock,
    caps: dict[str, Any],
    answer: dict[str, Any] | None,
    *,
    category: Category = Category.CONFIG_CHANGE,
) -> tuple[ElicitMode | None, list[dict[str, Any]], str]:
    req = make_request(clock, category=category, call=make_call(server="cfg", tool="set"))
    store.add(req)
    ch = ElicitationChannel(
        store, clock, allowed=lambda c: FORM, page_url=None, timeout_s=0.5, new_id=lambda: "e1"
    )

    async def go() -> tuple[ElicitMode | None, list[dict[str, Any]]]:
        reader = asyncio.StreamReader()
        out: list[dict[str, Any]] = []
        sent = asyncio.Event()

        async def write(data: bytes) -> None:
            msg = json.loads(data)
            out.append(msg)
            if msg.get("method") == "elicitation/create":
                sent.set()

        init = {"protocolVersion": "2025-11-25", "capabilities": caps, "clientInfo": {}}
        reader.feed_data(
            encode({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": init})
        )
        serving = asyncio.create_task(
            serve_streams(gateway(tmp_path, clock), reader, write, client="agent", channel=ch)
        )
        for _ in range(100):  # bounded: the initialize answer arrives within a few loop turns
            if out:
                break
            await asyncio.sleep(0)
        current = store.get(req.id, now=clock.now())
        expect_ask = ch.mode_for(current) is not None
        asking = asyncio.create_task(ch.ask(current))
        if answer is not None and expect_ask:
            await asyncio.wait_for(sent.wait(), 5)
            rid = next(m["id"] for m in out if m.get("method") == "elicitation/create")
            reader.feed_data(encode({"jsonrpc": "2.0", "id": rid, "result": answer}))
        mode = await asyncio.wait_for(asking, 5)
        reader.feed_eof()
        await asyncio.wait_for(serving, 5)
        return mode, out

    mode, out = asyncio.run(go())
    return mode, out, req.id


def test_a_form_accept_over_stdio_approves_the_request(
    tmp_path: Path, store: ApprovalStore, clock: FakeClock
) -> None:
    caps = {"elicitation": {"form": {}}}
    mode, out, rid = converse(
        tmp_path, store, clock, caps, {"action": "accept", "content": {"approve": True}}
    )
    assert mode == "form"
    assert out[0]["id"] == 1
    assert "result" in out[0]
    assert any(m.get("method") == "elicitation/create" for m in out)
    assert store.get(rid, now=clock.now()).state == State.APPROVED


def test_a_form_decline_over_stdio_denies_the_request(
    tmp_path: Path, store: ApprovalStore, clock: FakeClock
) -> None:
    caps = {"elicitation": {}}
    mode, _, rid = converse(tmp_path, store, clock, caps, {"action": "decline"})
    assert mode == "form"
    assert store.get(rid, now=clock.now()).state == State.DENIED


def test_an_unanswered_elicitation_times_out_and_denies(
    tmp_path: Path, store: ApprovalStore, clock: FakeClock
) -> None:
    caps = {"elicitation": {"form": {}}}
    mode, out, rid = converse(tmp_path, store, clock, caps, None)
    assert mode == "form"
    assert any(m.get("method") == "elicitation/create" for m in out)
    assert store.get(rid, now=clock.now()).state == State.DENIED


def test_a_client_that_declared_no_elicitation_is_sent_none_over_stdio(
    tmp_path: Path, store: ApprovalStore, clock: FakeClock
) -> None:
    mode, out, rid = converse(tmp_path, store, clock, {}, {"action": "accept"})
    assert mode is None
    assert not any(m.get("method") == "elicitation/create" for m in out)
    assert store.get(rid, now=clock.now()).state == State.PENDING


def test_an_exfiltration_request_is_never_form_elicited_over_stdio(
    tmp_path: Path, store: ApprovalStore, clock: FakeClock
) -> None:
    caps = {"elicitation": {"form": {}}}
    mode, out, rid = converse(
        tmp_path,
        store,
        clock,
        caps,
        {"action": "accept", "content": {"approve": True}},
        category=Category.EXFILTRATION,
    )
    assert mode is None
    assert not any(m.get("method") == "elicitation/create" for m in out)
    assert store.get(rid, now=clock.now()).state == State.PENDING
