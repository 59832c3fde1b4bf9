"""The 2026-07-28 input-required flow, served by the real gateway (raw JSON-RPC into
``Gateway.handle``, as the stdio and HTTP transports pass it on).

The first ``tools/call`` that needs approval is answered with ``input_required`` and a sealed
``requestState``; only a retry carrying that state intact, in time, for the same call and from the
same client may resume the request, and only a form answer for a category the client may approve
decides it. Waiting advances a fake clock, so an unanswered request expires at once.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from stockade.approvals import (
    INPUT_KEY,
    OPERATOR_ONLY,
    ApprovalStore,
    ElicitationChannel,
    ElicitMode,
    Event,
    State,
    StoreApprover,
)
from stockade.gateway import Gateway, GatewayConfig, PinStore, ServerSpec, SubprocessLauncher
from stockade.models import Category, Decision, ToolCall
from stockade.testing import FakeClock, MemoryAuditSink

ECHO = Path(__file__).parents[1] / "gateway" / "servers" / "sdk_echo.py"
PAGE = "http://127.0.0.1:9/approvals"
MODERN = "2026-07-28"
FORM: frozenset[ElicitMode] = frozenset({"form"})
ACCEPT = {"action": "accept", "content": {"approve": True}}


def asks_approval(call: ToolCall, context: Any) -> Decision:
    """config_change for any call; exfiltration when the message starts with ``leak``."""
    if str(call.arguments.get("message", "")).startswith("leak"):
        return Decision.require_approval("sends data out", Category.EXFILTRATION, rule="t")
    return Decision.require_approval("changes config", Category.CONFIG_CHANGE, rule="t")


class Rig:
    def __init__(self, gw: Gateway, store: ApprovalStore, clock: FakeClock) -> None:
        self.gw = gw
        self.store = store
        self.clock = clock
        self._id = 0

    async def call(
        self,
        message: str = "hi",
        *,
        client: str = "alice",
        caps: dict[str, Any] | None = None,
        retry: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        self._id += 1
        meta = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": (
                {"elicitation": {"form": {}, "url": {}}} if caps is None else caps
            ),
        }
        params = {"name": "cfg__echo", "arguments": {"message": message}, "_meta": meta}
        msg = {"jsonrpc": "2.0", "id": self._id, "method": "tools/call", "params": params}
        params.update(retry or {})
        resp = await self.gw.handle(msg, client=client)
        assert resp is not None
        result: dict[str, Any] = resp["result"]
        return result

    def states(self) -> list[State]:
        return [r.state for r in self.store.list(now=self.clock.now())]


def with_rig(tmp_path: Path, body: Callable[[Rig], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        clock = FakeClock()
        sink = MemoryAuditSink()
        store = ApprovalStore(tmp_path / "runs.db", audit=sink)
        channel = ElicitationChannel(
            store,
            clock,
            allowed=lambda c: frozenset({"url"}) if c in OPERATOR_ONLY else FORM,
            page_url=PAGE,
            timeout_s=30,
        )
        approver = StoreApprover(
            store,
            clock,
            policy_hash=lambda: "sha256:" + "a" * 64,
            timeout_for=lambda c: 60.0,
            poll_s=1.0,
            wait=clock.advance,  # waiting moves fake time: an unanswered request expires at once
            channel=channel,
        )
        spec = ServerSpec(name="cfg", command=(sys.executable, str(ECHO)), tofu=True)
        gw = Gateway(
            GatewayConfig(servers=(spec,), clients=("alice", "bob"), approval_timeout_s=60),
            pins=PinStore(tmp_path / "pins"),
            launcher=SubprocessLauncher(),
            decider=asks_approval,
            approver=approver,
            audit=sink,
            clock=clock,
        )
        await asyncio.wait_for(gw.start(), 30)
        try:
            return await asyncio.wait_for(body(Rig(gw, store, clock)), 60)
        finally:
            await gw.close()

    return asyncio.run(go())


def text(result: dict[str, Any]) -> str:
    return " ".join(str(c.get("text", "")) for c in result.get("content", []))


def answer(first: dict[str, Any], response: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "requestState": first["requestState"],
        "inputResponses": {INPUT_KEY: ACCEPT if response is None else response},
    }


@pytest.mark.guarantee("apr-mrtr-served")
def test_a_first_call_gets_input_required_and_the_accepted_retry_runs_the_tool(
    tmp_path: Path,
) -> None:
    async def body(rig: Rig) -> tuple[dict[str, Any], dict[str, Any], list[State]]:
        first = await rig.call()
        after_first = rig.states()
        done = await rig.call(retry=answer(first))
        return first, done, [*after_first, *rig.states()]

    first, done, states = with_rig(tmp_path, body)
    assert first["resultType"] == "input_required"
    question = first["inputRequests"][INPUT_KEY]
    assert question["method"] == "elicitation/create"
    assert question["params"]["mode"] == "form"
    assert done["resultType"] == "complete"
    assert not done.get("isError"), done
    assert "Echo: hi" in text(done)
    assert states == [State.PENDING, State.CONSUMED]


@pytest.mark.guarantee("apr-mrtr-served")
def test_a_declined_retry_denies_and_the_tool_never_runs(tmp_path: Path) -> None:
    async def body(rig: Rig) -> tuple[dict[str, Any], list[State]]:
        first = await rig.call()
        done = await rig.call(retry=answer(first, {"action": "decline"}))
        return done, rig.states()

    done, states = with_rig(tmp_path, body)
    assert done["isError"]
    assert "form elicitation: decline" in text(done)
    assert states == [State.DENIED]


@pytest.mark.guarantee("apr-mrtr-served")
@pytest.mark.parametrize("attack", ["tampered", "other client", "other call", "garbage"])
def test_a_retry_whose_state_does_not_open_is_denied_and_decides_nothing(
    tmp_path: Path, attack: str
) -> None:
    async def body(rig: Rig) -> tuple[dict[str, Any], list[State]]:
        first = await rig.call()
        retry = answer(first)
        if attack == "tampered":
            state = retry["requestState"]
            retry["requestState"] = state[:10] + ("A" if state[10] != "A" else "B") + state[11:]
            done = await rig.call(retry=retry)
        elif attack == "other client":
            done = await rig.call(client="bob", retry=retry)
        elif attack == "other call":
            done = await rig.call("hi there", retry=retry)
        else:
            retry["requestState"] = {"id": "apr_x"}
            done = await rig.call(retry=retry)
        return done, rig.states()

    done, states = with_rig(tmp_path, body)
    assert done["isError"]
    assert "requestState" in text(done)
    assert states[0] == State.PENDING  # the first request: the forged answer decided nothing


@pytest.mark.guarantee("apr-mrtr-served")
def test_an_expired_state_is_refused(tmp_path: Path) -> None:
    async def body(rig: Rig) -> tuple[dict[str, Any], list[State]]:
        first = await rig.call()
        rig.clock.advance(3600)
        done = await rig.call(retry=answer(first))
        return done, rig.states()

    done, states = with_rig(tmp_path, body)
    assert done["isError"]
    assert "expired" in text(done)
    assert states == [State.EXPIRED]


@pytest.mark.guarantee("apr-mrtr-served")
def test_a_replayed_retry_never_runs_the_tool_twice(tmp_path: Path) -> None:
    async def body(rig: Rig) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await rig.call()
        once = await rig.call(retry=answer(first))
        twice = await rig.call(retry=answer(first))
        return once, twice

    once, twice = with_rig(tmp_path, body)
    assert not once.get("isError"), once
    assert twice["isError"]
    assert "consumed" in text(twice)


@pytest.mark.guarantee("apr-mrtr-served")
def test_an_exfiltration_call_is_asked_in_url_mode_and_only_the_operator_decides(
    tmp_path: Path,
) -> None:
    async def body(rig: Rig) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        first = await rig.call("leak it")
        seen["first"] = first
        # the client says yes in form shape: that decides nothing; nobody else answers -> expired
        seen["unanswered"] = await rig.call("leak it", retry=answer(first))
        seen["states"] = rig.states()
        second = await rig.call("leak it")
        (pending,) = [r for r in rig.store.list(now=rig.clock.now()) if r.state == State.PENDING]
        rig.store.transition(
            pending.id,
            Event(kind="approve", by="alice", channel="cli", at=rig.clock.now(), reason="ok"),
        )
        seen["approved"] = await rig.call("leak it", retry=answer(second))
        seen["final"] = rig.store.get(pending.id, now=rig.clock.now())
        return seen

    seen = with_rig(tmp_path, body)
    params = seen["first"]["inputRequests"][INPUT_KEY]["params"]
    assert params["mode"] == "url"
    assert params["url"].startswith(PAGE + "/#req-apr_")
    assert seen["unanswered"]["isError"]
    assert seen["states"] == [State.EXPIRED]
    assert not seen["approved"].get("isError"), seen["approved"]
    assert (seen["final"].state, seen["final"].channel) == (State.CONSUMED, "cli")


@pytest.mark.guarantee("apr-mrtr-served")
def test_a_form_only_client_is_not_asked_about_exfiltration_and_a_client_without_it_not_at_all(
    tmp_path: Path,
) -> None:
    async def body(rig: Rig) -> list[dict[str, Any]]:
        return [
            await rig.call("leak it", caps={"elicitation": {"form": {}}}),
            await rig.call("hi", caps={}),
        ]

    results = with_rig(tmp_path, body)
    for r in results:
        assert r["resultType"] == "complete"  # no input_required: it waited for an operator
        assert r["isError"]
        assert "expired" in text(r)
