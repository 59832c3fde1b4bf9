"""``stockade gateway --stdio`` asks the agent's client through MCP elicitation, as its policy says.

The real CLI runs as a subprocess; the MCP SDK client (legacy ``initialize`` era) drives it with an
``elicitation_callback``. The policy lets ``config_change`` be asked in form mode and
``exfiltration`` in URL mode. A small server records every call it receives in a file, which is
how a test knows whether the tool ran. Most tests run the server as a plain child process
(``--unsafe-no-sandbox``); one runs it in gVisor so the run trace (``stockade trace``) exists.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, types

from _gwclient import gateway_params, outbox_server, require_gvisor, stockade_cli

pytestmark = pytest.mark.slow

PAGE = "http://127.0.0.1:8765"

# Records each call in OUTBOX/received.jsonl: the proof of whether a tool ran.
SERVER = """\
import json, sys
from pathlib import Path
log = Path(sys.argv[1]) / "received.jsonl"
def send(msg):
    sys.stdout.write(json.dumps(msg) + "\\n")
    sys.stdout.flush()
def tool(name):
    return {"name": name, "description": name, "inputSchema": {"type": "object",
            "properties": {"value": {"type": "string"}}, "required": ["value"]}}
for raw in sys.stdin:
    msg = json.loads(raw)
    method, rid = msg.get("method"), msg.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": rid, "result": {"protocolVersion": "2025-11-25",
              "capabilities": {"tools": {}}, "serverInfo": {"name": "cfg", "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": [tool("set"), tool("upload")]}})
    elif method == "tools/call":
        with log.open("a") as f:
            f.write(json.dumps(msg.get("params")) + "\\n")
        done = {"content": [{"type": "text", "text": "done"}]}
        send({"jsonrpc": "2.0", "id": rid, "result": done})
    elif rid is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
"""

POLICY = """\
version: 1
default: deny
approvals:
  timeout_s: 20
  categories:
    config_change: {{timeout_s: 20, elicitation: [form]}}
    exfiltration: {{timeout_s: {exfil_timeout}, elicitation: [url]}}
servers:
  - name: cfg
    command: [{command}, "{outbox}"]
    tofu: true
{extra}    tools:
      rules:
        - tool: set
          action: approve
          category: config_change
        - tool: upload
          action: approve
          category: exfiltration
"""


def setup(tmp_path: Path, *, gvisor: bool = False, exfil_timeout: int = 30) -> tuple[Path, Path]:
    command, extra, outbox = outbox_server(tmp_path, "cfg_server.py", SERVER, gvisor=gvisor)
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        POLICY.format(command=command, outbox=outbox, extra=extra, exfil_timeout=exfil_timeout)
    )
    return policy, outbox


def received(outbox: Path) -> list[dict[str, Any]]:
    log = outbox / "received.jsonl"
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def history(tmp_path: Path) -> list[dict[str, Any]]:
    out = stockade_cli(tmp_path, "approvals", "list", "--all", "--json")
    assert out.returncode == 0, out.stderr
    found: list[dict[str, Any]] = json.loads(out.stdout)
    return found


class Agent:
    """The SDK client's side: what it was asked, and how it answers."""

    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    async def elicit(self, context: Any, params: Any) -> types.ElicitResult | types.ErrorData:
        self.asked.append(params.model_dump(by_alias=True, exclude_none=True))
        if self.answer == "accept":  # a URL-mode question gets the same "yes": it decides nothing
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")


async def session(
    tmp_path: Path,
    policy: Path,
    agent: Agent,
    tool: str,
    *extra: str,
    operator_approves: bool = False,
    trace: bool = False,
) -> dict[str, Any]:
    params = gateway_params(tmp_path / "home", policy, *extra, inherit_env=True)
    seen: dict[str, Any] = {}
    async with Client(
        params,
        read_timeout_seconds=90,
        mode="legacy",
        elicitation_callback=agent.elicit if agent.answer is not None else None,
    ) as client:
        call = asyncio.create_task(client.call_tool(f"cfg__{tool}", {"value": "v1"}))
        if operator_approves:
            for _ in range(300):  # bounded: about 30 s, until the client was asked
                if agent.asked:
                    break
                await asyncio.sleep(0.1)
            rid = agent.asked[0]["url"].rsplit("#req-", 1)[1]
            ok = await asyncio.to_thread(
                stockade_cli, tmp_path, "approvals", "approve", rid, "--by", "alice"
            )
            assert ok.returncode == 0, ok.stderr
        seen["result"] = await asyncio.wait_for(call, 60)
        if trace:
            seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


def run(tmp_path: Path, policy: Path, agent: Agent, tool: str, *extra: str, **kw: Any) -> Any:
    return asyncio.run(asyncio.wait_for(session(tmp_path, policy, agent, tool, *extra, **kw), 120))


def text(result: types.CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


NO_SANDBOX = ("--unsafe-no-sandbox", "--approval-page", PAGE)


@pytest.mark.guarantee("apr-elicit-gateway-wired")
def test_a_form_accept_from_the_agent_approves_a_config_change_and_the_tool_runs(
    tmp_path: Path,
) -> None:
    policy, outbox = setup(tmp_path)
    agent = Agent("accept")
    seen = run(tmp_path, policy, agent, "set", *NO_SANDBOX)
    assert [a["mode"] for a in agent.asked] == ["form"]
    assert not seen["result"].is_error, text(seen["result"])
    assert [r["name"] for r in received(outbox)] == ["set"]
    (req,) = history(tmp_path)
    assert (req["state"], req["channel"], req["decided_by"]) == (
        "consumed",
        "elicitation",
        "client:stdio",
    )


@pytest.mark.guarantee("apr-elicit-gateway-wired")
def test_a_form_decline_from_the_agent_denies_and_the_tool_never_runs(tmp_path: Path) -> None:
    policy, outbox = setup(tmp_path)
    agent = Agent("decline")
    seen = run(tmp_path, policy, agent, "set", *NO_SANDBOX)
    assert [a["mode"] for a in agent.asked] == ["form"]
    assert seen["result"].is_error
    assert "form elicitation: decline" in text(seen["result"])
    assert received(outbox) == []
    assert [r["state"] for r in history(tmp_path)] == ["denied"]


@pytest.mark.guarantee("apr-elicit-gateway-operator-only")
def test_an_exfiltration_call_gets_only_the_approval_page_and_only_the_operator_decides(
    tmp_path: Path,
) -> None:
    policy, outbox = setup(tmp_path)
    agent = Agent("accept")  # the agent's client says yes; that must decide nothing
    seen = run(tmp_path, policy, agent, "upload", *NO_SANDBOX, operator_approves=True)
    (asked,) = agent.asked
    assert asked["mode"] == "url"
    assert asked["url"].startswith(PAGE + "/#req-apr_")
    assert "token" not in asked["url"]
    assert not seen["result"].is_error, text(seen["result"])
    assert [r["name"] for r in received(outbox)] == ["upload"]
    (req,) = history(tmp_path)
    assert (req["state"], req["channel"], req["decided_by"]) == ("consumed", "cli", "alice")


@pytest.mark.guarantee("apr-elicit-gateway-operator-only")
def test_without_an_approval_page_an_exfiltration_call_is_not_elicited_and_expires(
    tmp_path: Path,
) -> None:
    policy, outbox = setup(tmp_path, exfil_timeout=3)
    agent = Agent("accept")
    seen = run(tmp_path, policy, agent, "upload", "--unsafe-no-sandbox")
    assert agent.asked == []
    assert seen["result"].is_error
    assert received(outbox) == []
    assert [r["state"] for r in history(tmp_path)] == ["expired"]


def test_the_gateway_says_when_url_elicitation_is_off_for_want_of_an_approval_page(
    tmp_path: Path,
) -> None:
    policy, _ = setup(tmp_path)
    proc = stockade_cli(tmp_path, "gateway", "--policy", str(policy), "--stdio")
    assert "no --approval-page given, so no URL-mode elicitation for exfiltration" in proc.stderr
    bad = stockade_cli(
        tmp_path,
        *("gateway", "--policy", str(policy), "--stdio", "--unsafe-no-sandbox"),
        *("--approval-page", "http://127.0.0.1:8765/?token=abc"),
    )
    assert bad.returncode != 0
    assert "no user info, query or fragment" in bad.stderr


@pytest.mark.guarantee("apr-elicit-channel-capability")
def test_a_client_without_the_elicitation_capability_is_never_asked(tmp_path: Path) -> None:
    policy, outbox = setup(tmp_path)
    short = policy.read_text().replace(
        "config_change: {timeout_s: 20", "config_change: {timeout_s: 3"
    )
    policy.write_text(short)
    agent = Agent(None)  # no callback: the SDK declares no elicitation capability
    seen = run(tmp_path, policy, agent, "set", *NO_SANDBOX)
    assert agent.asked == []
    assert seen["result"].is_error
    assert received(outbox) == []
    assert [r["state"] for r in history(tmp_path)] == ["expired"]


@pytest.mark.gvisor
@pytest.mark.guarantee("apr-elicit-gateway-wired")
def test_the_run_trace_shows_a_form_approval_through_the_elicitation_channel(
    tmp_path: Path,
) -> None:
    require_gvisor()
    policy, outbox = setup(tmp_path, gvisor=True)
    agent = Agent("accept")
    seen = run(tmp_path, policy, agent, "set", "--approval-page", PAGE, trace=True)
    assert not seen["result"].is_error, text(seen["result"])
    assert [r["name"] for r in received(outbox)] == ["set"]
    run_id = seen["trace"].structured_content["servers"]["cfg"]["run"]["run_id"]
    out = stockade_cli(tmp_path, "trace", run_id, "--json")
    assert out.returncode == 0, out.stderr
    story = [a["data"] for a in json.loads(out.stdout)["approvals"]]
    assert [a["state"] for a in story] == ["pending", "approved", "consumed"]
    assert story[1]["channel"] == "elicitation"
    assert story[1]["decided_by"] == "client:stdio"
