"""A downstream session against a hostile server process (real subprocess, bounded waits)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from stockade.gateway import DownstreamError, DownstreamSession, ServerSpec, SubprocessLauncher


def with_session(
    spec: ServerSpec, body: Callable[[DownstreamSession], Any], *, max_bytes: int = 1_000_000
) -> Any:
    async def go() -> Any:
        changed = asyncio.Event()
        s = DownstreamSession(
            spec, SubprocessLauncher(), max_message_bytes=max_bytes, on_list_changed=changed.set
        )
        s.changed = changed  # type: ignore[attr-defined]
        await asyncio.wait_for(s.start(), 20)
        try:
            return await asyncio.wait_for(body(s), 30)
        finally:
            await s.close()

    return asyncio.run(go())


def test_lists_tools_and_calls_one(evil_spec: Callable[..., ServerSpec]) -> None:
    async def body(s: DownstreamSession) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await s.list_tools(), await s.call_tool("echo", {"message": "hi"})

    tools, result = with_session(evil_spec(), body)
    assert [t["name"] for t in tools] == ["echo", "send_email"]
    assert result["content"][0]["text"] == "Echo: hi"


@pytest.mark.guarantee("gw-downstream-timeout")
def test_a_stuck_call_times_out_with_an_error(evil_spec: Callable[..., ServerSpec]) -> None:
    async def body(s: DownstreamSession) -> None:
        with pytest.raises(DownstreamError, match="did not answer tools/call within"):
            await s.call_tool("echo", {"message": "hi"})

    with_session(evil_spec("slow", call_timeout_s=0.2), body)


def test_a_crashing_server_fails_the_call_not_the_gateway(
    evil_spec: Callable[..., ServerSpec],
) -> None:
    async def body(s: DownstreamSession) -> None:
        with pytest.raises(DownstreamError, match="exited"):
            await s.call_tool("echo", {"message": "hi"})
        assert not s.running

    with_session(evil_spec("crash"), body)


@pytest.mark.guarantee("gw-malformed-jsonrpc")
def test_malformed_output_is_dropped_and_the_answer_still_arrives(
    evil_spec: Callable[..., ServerSpec],
) -> None:
    async def body(s: DownstreamSession) -> tuple[dict[str, Any], int]:
        return await s.call_tool("echo", {"message": "hi"}), s.dropped

    result, dropped = with_session(evil_spec("malformed"), body)
    assert result["content"][0]["text"] == "Echo: hi"
    assert dropped >= 4


@pytest.mark.guarantee("gw-bounded-messages")
def test_an_oversized_answer_is_discarded_and_the_call_times_out(
    evil_spec: Callable[..., ServerSpec],
) -> None:
    async def body(s: DownstreamSession) -> int:
        with pytest.raises(DownstreamError):
            await s.call_tool("echo", {"message": "hi"})
        return s.dropped

    assert with_session(evil_spec("oversized", call_timeout_s=2.0), body) >= 1


def test_a_flood_of_notifications_and_stray_responses_is_absorbed(
    evil_spec: Callable[..., ServerSpec],
) -> None:
    async def body(s: DownstreamSession) -> tuple[dict[str, Any], int]:
        return await s.call_tool("echo", {"message": "hi"}), s.dropped

    result, dropped = with_session(evil_spec("flood"), body)
    assert len(result["content"][0]["text"]) == 500_000
    assert dropped == 2000  # the stray responses; notifications are ignored


def test_list_changed_notifications_reach_the_callback(
    evil_spec: Callable[..., ServerSpec],
) -> None:
    async def body(s: DownstreamSession) -> bool:
        await s.call_tool("echo", {"message": "hi"})
        await asyncio.wait_for(s.changed.wait(), 10)  # type: ignore[attr-defined]
        return True

    assert with_session(evil_spec("rugpull"), body)


def test_a_missing_command_is_a_downstream_error() -> None:
    spec = ServerSpec(name="gone", command=("/nonexistent/server",))

    async def go() -> None:
        s = DownstreamSession(spec, SubprocessLauncher(), max_message_bytes=10_000)
        await s.start()

    with pytest.raises(DownstreamError, match="cannot start"):
        asyncio.run(go())
