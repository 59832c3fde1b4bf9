"""The kill switch against a real ``stockade gateway --stdio``, and lifting it.

The MCP SDK client calls a tool (it runs); ``stockade kill`` engages the switch: the next call is
denied and the gateway stops the server; ``stockade kill --lift`` lifts it: the next call revives
the server through the gateway's usual revival and runs. The audit log tells the whole story. One
test runs the server as a child process (fast); one runs it in gVisor, where the run store shows
the first sandbox ended with the kill recorded in its run and a fresh run serving after the lift.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from _gwclient import (
    gateway_client,
    outbox_server,
    recording_server,
    require_gvisor,
    stockade_cli,
)
from stockade.store import RunStore

pytestmark = pytest.mark.slow

NOTE = {"name": "note", "description": "note", "inputSchema": {"type": "object"}}

POLICY = """\
version: 1
default: deny
servers:
  - name: notes
    command: [{command}, "{outbox}"]
    tofu: true
{extra}    tools:
      rules:
        - tool: note
          action: allow
          tier: low
"""


def setup(tmp_path: Path, *, gvisor: bool = False) -> tuple[Path, Path]:
    pid = "__import__('os').getpid()"
    source = recording_server(
        "notes", [NOTE], record="p", reply=f"'noted by ' + str({pid})", on_start=f"{{'pid': {pid}}}"
    )
    command, extra, outbox = outbox_server(tmp_path, "notes.py", source, gvisor=gvisor)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(command=command, outbox=outbox, extra=extra))
    return policy, outbox


def text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def audit(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "home" / "audit" / "audit.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


async def cli(tmp_path: Path, *args: str) -> None:
    out = await asyncio.to_thread(stockade_cli, tmp_path, *args)
    assert out.returncode == 0, out.stderr


async def until_stopped(tmp_path: Path) -> None:
    """Bounded (about 20 s): the gateway reports the kill switch's stop in the audit log."""
    for _ in range(200):
        if any(e["type"] == "gateway.kill_switch" for e in audit(tmp_path)):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the gateway never stopped its servers after the kill")


async def restarted(tmp_path: Path) -> bool:
    """Whether the gateway restarts a server within about 2 s (a revival runs in the background:
    give it the time it takes, bounded, to show up in the audit log)."""
    for _ in range(20):
        if any(e["type"] == "gateway.server_restart" for e in audit(tmp_path)):
            return True
        await asyncio.sleep(0.1)
    return False


async def story(tmp_path: Path, policy: Path, outbox: Path, *extra: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    client: Client
    async with gateway_client(tmp_path, policy, *extra, read_timeout_s=90) as client:
        seen["before"] = await client.call_tool("notes__note", {"text": "one"})
        await cli(tmp_path, "kill", "--reason", "incident 42", "--by", "ops")
        seen["while"] = await client.call_tool("notes__note", {"text": "two"})
        await until_stopped(tmp_path)
        seen["after_stop"] = await client.call_tool("notes__note", {"text": "three"})
        seen["listed"] = [t.name for t in (await client.list_tools()).tools]  # revives nothing
        seen["restarted_while_killed"] = await restarted(tmp_path)
        seen["starts_while_killed"] = len([n for n in received(outbox) if "pid" in n])
        await cli(tmp_path, "kill", "--lift", "--reason", "resolved", "--by", "ops")
        seen["lifted"] = await client.call_tool("notes__note", {"text": "four"})
        seen["again"] = await client.call_tool("notes__note", {"text": "five"})
    return seen


def received(outbox: Path) -> list[dict[str, Any]]:
    log = outbox / "received.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status  # a zombie has stopped


def check_story(tmp_path: Path, seen: dict[str, Any], outbox: Path) -> list[dict[str, Any]]:
    assert not seen["before"].is_error, text(seen["before"])
    for denied in ("while", "after_stop"):
        assert seen[denied].is_error
        assert "kill switch is engaged by ops (incident 42)" in text(seen[denied])
    assert "notes__note" in seen["listed"]  # still listed while stopped
    assert not seen["restarted_while_killed"]  # listing tools did not revive the stopped server
    assert seen["starts_while_killed"] == 1
    for ran in ("lifted", "again"):
        assert not seen[ran].is_error, text(seen[ran])
    notes = received(outbox)
    assert [n.get("arguments", {}).get("text") for n in notes if "pid" not in n] == [
        "one",
        "four",
        "five",
    ]  # nothing ran while the switch was engaged
    events = audit(tmp_path)
    kinds = [e["type"] for e in events]
    (stop,) = [e["data"] for e in events if e["type"] == "gateway.kill_switch"]
    assert stop["stopped"] == ["notes"]
    assert (stop["by"], stop["reason"]) == ("ops", "incident 42")
    engaged = [e["data"] for e in events if e["type"] == "approval.kill_switch"]
    assert [d.get("engaged") for d in engaged] == [True, False]
    restart = kinds.index("gateway.server_restart")
    assert restart > kinds.index("gateway.kill_switch")
    return notes


@pytest.mark.guarantee("apr-kill-lift-revives")
def test_after_a_kill_and_its_lift_the_next_call_revives_the_server_and_runs(
    tmp_path: Path,
) -> None:
    policy, outbox = setup(tmp_path)
    seen = asyncio.run(
        asyncio.wait_for(story(tmp_path, policy, outbox, "--unsafe-no-sandbox"), 180)
    )
    notes = check_story(tmp_path, seen, outbox)
    first, second = [n["pid"] for n in notes if "pid" in n]
    assert first != second
    assert not _alive(first)  # the server the kill stopped is gone
    assert f"noted by {second}" in text(seen["lifted"])


@pytest.mark.gvisor
@pytest.mark.guarantee("apr-kill-lift-revives")
def test_in_gvisor_the_kill_ends_the_sandbox_and_the_lift_serves_from_a_fresh_one(
    tmp_path: Path,
) -> None:
    require_gvisor()
    policy, outbox = setup(tmp_path, gvisor=True)
    seen = asyncio.run(asyncio.wait_for(story(tmp_path, policy, outbox), 240))
    check_story(tmp_path, seen, outbox)
    with RunStore.open(tmp_path / "home" / "runs.db") as store:
        runs = sorted(store.list(), key=lambda r: r.created_at)
        assert len(runs) == 2
        killed, fresh = runs
        assert killed.status.value != "running"
        kill = [e.data for e in store.evidence(killed.run_id) if e.kind == "kill_switch"]
        assert kill == [{"by": "ops", "reason": "incident 42", "action": "server stopped"}]
        assert fresh.status.value == "running" or fresh.ended_at is not None
        assert not [e for e in store.evidence(fresh.run_id) if e.kind == "kill_switch"]
