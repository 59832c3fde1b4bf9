"""The MCP SDK client's elicitation callback answers stockade's approval questions over stdio,
in both protocol eras: 2025-11-25 (``initialize``, then ``elicitation/create`` from the gateway)
and 2026-07-28 (the ``tools/call`` is answered with ``input_required``; the SDK retries it with the
answer and the sealed ``requestState``).

A small driver serves the real gateway (``serve_stdio`` with an :class:`ElicitationChannel` hooked
into a ``StoreApprover``) in front of the SDK echo server; the policy allows form mode for
config_change and URL mode for operator-only categories; the decider asks for a config_change
approval for ``echo`` and an exfiltration approval when the message starts with ``leak``.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError, StdioServerParameters, types

ECHO = Path(__file__).resolve().parents[1] / "gateway" / "servers" / "sdk_echo.py"

DRIVER = """
import asyncio, sys
from pathlib import Path
from stockade.approvals import OPERATOR_ONLY, ApprovalStore, StoreApprover
from stockade.approvals._elicit_channel import ElicitationChannel
from stockade.gateway import Gateway, GatewayConfig, PinStore, ServerSpec, SubprocessLauncher
from stockade.gateway._stdio import serve_stdio
from stockade.models import Category, Decision, SystemClock
from stockade.testing import MemoryAuditSink

home = Path(sys.argv[1]); echo = sys.argv[2]; modes = frozenset(sys.argv[3].split(","))
docs = sys.argv[4]
URL = frozenset({"url"})

def decider(call, context):
    what = [call.arguments.get(k, "") for k in ("message", "uri", "name")]
    if any(str(w).startswith(("leak", "docs://leak")) for w in what):
        return Decision.require_approval("sends data out", Category.EXFILTRATION, rule="t")
    return Decision.require_approval("changes config", Category.CONFIG_CHANGE, rule="t")

async def main():
    clock = SystemClock()
    sink = MemoryAuditSink()
    store = ApprovalStore(home / "runs.db", audit=sink)
    channel = ElicitationChannel(
        store, clock, allowed=lambda c: URL if c in OPERATOR_ONLY else modes, page_url="http://127.0.0.1:9/approvals",
        timeout_s=10,
    )
    approver = StoreApprover(
        store, clock, policy_hash=lambda: "sha256:" + "a" * 64, timeout_for=lambda c: 3.0,
        poll_s=0.05, channel=channel, margin_s=0.5,
    )
    spec = ServerSpec(name="cfg", command=(sys.executable, echo), tofu=True, call_timeout_s=10.0)
    more = ServerSpec(name="docs", command=(sys.executable, docs), tofu=True, call_timeout_s=10.0)
    gw = Gateway(
        GatewayConfig(servers=(spec, more), clients=("agent",), approval_timeout_s=3.0),
        pins=PinStore(home / "pins"), launcher=SubprocessLauncher(), decider=decider,
        approver=approver, audit=sink, clock=clock,
    )
    await serve_stdio(gw, client="agent", channel=channel)

asyncio.run(main())
"""


# A resource and a prompt, each harmless and "leak"-named (the driver's decider asks exfiltration).
DOCS = """
import json, sys
def send(msg):
    sys.stdout.write(json.dumps(msg) + "\\n")
    sys.stdout.flush()
PROMPTS = [{"name": "brief", "description": "A brief."}, {"name": "leak_brief", "description": "x"}]
for raw in sys.stdin:
    msg = json.loads(raw)
    method, rid, p = msg.get("method"), msg.get("id"), msg.get("params") or {}
    if rid is None:
        continue
    if method == "initialize":
        caps = {"resources": {}, "prompts": {}, "tools": {}}
        out = {"protocolVersion": "2025-11-25", "capabilities": caps,
               "serverInfo": {"name": "docs", "version": "1"}}
    elif method == "tools/list":
        out = {"tools": []}
    elif method == "resources/list":
        out = {"resources": [{"uri": "docs://readme", "name": "readme"},
                             {"uri": "docs://leak", "name": "leak"}]}
    elif method == "resources/templates/list":
        out = {"resourceTemplates": []}
    elif method == "resources/read":
        out = {"contents": [{"uri": p["uri"], "text": "contents of " + p["uri"]}]}
    elif method == "prompts/list":
        out = {"prompts": PROMPTS}
    elif method == "prompts/get":
        text = "the prompt " + p["name"]
        out = {"messages": [{"role": "user", "content": {"type": "text", "text": text}}]}
    else:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
        continue
    send({"jsonrpc": "2.0", "id": rid, "result": out})
"""

ERAS = pytest.mark.parametrize("era", ["legacy", "2026-07-28"])


Act = Callable[[Client], Awaitable[Any]]


def run(
    tmp_path: Path,
    answer: str | None,
    message: str,
    modes: str = "form",
    era: str = "legacy",
    *,
    act: Act | None = None,
) -> tuple[Any, list[dict[str, Any]]]:
    """The call (or ``act``'s request) through the gateway, and the questions the client got."""
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    (tmp_path / "docs.py").write_text(DOCS)
    asked: list[dict[str, Any]] = []

    async def on_elicit(context: Any, params: Any) -> types.ElicitResult | types.ErrorData:
        asked.append(params.model_dump(by_alias=True, exclude_none=True))
        if answer == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        return types.ElicitResult(action="decline")

    params = StdioServerParameters(
        command=sys.executable,
        args=[str(driver), str(tmp_path), str(ECHO), modes, str(tmp_path / "docs.py")],
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": os.pathsep.join(sys.path)},
    )

    async def go() -> Any:
        async with Client(
            params,
            read_timeout_seconds=30,
            mode=era,  # legacy: initialize + elicitation/create; 2026-07-28: input_required
            elicitation_callback=on_elicit if answer is not None else None,
        ) as client:
            await client.list_tools()
            if act is not None:
                try:
                    return await act(client)
                except MCPError as e:  # a refused read or get is a JSON-RPC error
                    return e
            return await client.call_tool("cfg__echo", {"message": message})

    return asyncio.run(go()), asked


def text(result: types.CallToolResult) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


@ERAS
def test_a_form_accept_from_the_sdk_client_approves_a_config_change_call(
    tmp_path: Path, era: str
) -> None:
    result, asked = run(tmp_path, "accept", "hello", era=era)
    assert len(asked) == 1
    assert asked[0]["mode"] == "form"
    assert not result.is_error, text(result)
    assert "hello" in text(result)


@ERAS
def test_a_form_decline_from_the_sdk_client_denies_the_call(tmp_path: Path, era: str) -> None:
    result, asked = run(tmp_path, "decline", "hello", era=era)
    assert len(asked) == 1
    assert result.is_error
    assert "form elicitation" in text(result)


@pytest.mark.guarantee("apr-elicit-channel-operator-only")
@ERAS
def test_a_form_accept_never_approves_an_exfiltration_call(tmp_path: Path, era: str) -> None:
    result, asked = run(tmp_path, "accept", "leak it", era=era)
    assert [a.get("mode") for a in asked] == ["url"]
    assert asked[0]["url"].startswith("http://127.0.0.1:9/approvals/#req-apr_")
    assert "token" not in asked[0]["url"]
    assert result.is_error
    assert "expired" in text(result)


@pytest.mark.guarantee("apr-elicit-channel-capability")
@ERAS
def test_a_client_without_the_capability_gets_no_elicitation(tmp_path: Path, era: str) -> None:
    result, asked = run(tmp_path, None, "hello", era=era)
    assert asked == []
    assert result.is_error


async def _read(client: Client, name: str) -> Any:
    listed = {r.name: r.uri for r in (await client.list_resources()).resources}
    return await client.read_resource(listed[name])


def _reader(name: str) -> Act:
    return lambda client: _read(client, name)


def _getter(name: str) -> Act:
    return lambda client: client.get_prompt(f"docs__{name}", {})


def _shown(result: Any) -> str:
    if isinstance(result, MCPError):
        return str(result)
    if isinstance(result, types.ReadResourceResult):
        return " ".join(getattr(c, "text", "") for c in result.contents)
    return " ".join(getattr(m.content, "text", "") for m in result.messages)


KINDS = pytest.mark.parametrize(
    ("act", "leak", "expect"),
    [
        (_reader("readme"), _reader("leak"), "contents of docs://readme"),
        (_getter("brief"), _getter("leak_brief"), "the prompt brief"),
    ],
    ids=["resources/read", "prompts/get"],
)


@pytest.mark.guarantee("apr-elicit-reads-prompts")
@ERAS
@KINDS
def test_a_form_accept_from_the_sdk_client_approves_a_resource_read_or_a_prompt_get(
    tmp_path: Path, era: str, act: Act, leak: Act, expect: str
) -> None:
    result, asked = run(tmp_path, "accept", "", era=era, act=act)
    assert [a["mode"] for a in asked] == ["form"]
    assert "docs" in asked[0]["message"]
    assert not isinstance(result, MCPError), result
    assert expect in _shown(result)


@pytest.mark.guarantee("apr-elicit-reads-prompts")
@ERAS
@KINDS
def test_a_form_decline_denies_a_resource_read_or_a_prompt_get(
    tmp_path: Path, era: str, act: Act, leak: Act, expect: str
) -> None:
    result, asked = run(tmp_path, "decline", "", era=era, act=act)
    assert [a["mode"] for a in asked] == ["form"]
    assert isinstance(result, MCPError)
    assert "form elicitation: decline" in str(result)
    assert expect not in str(result)


@pytest.mark.guarantee("apr-elicit-reads-prompts")
@ERAS
@KINDS
def test_an_operator_only_read_or_get_gets_only_url_mode_and_the_clients_yes_decides_nothing(
    tmp_path: Path, era: str, act: Act, leak: Act, expect: str
) -> None:
    result, asked = run(tmp_path, "accept", "", era=era, act=leak)
    assert [a.get("mode") for a in asked] == ["url"]
    assert asked[0]["url"].startswith("http://127.0.0.1:9/approvals/#req-apr_")
    assert isinstance(result, MCPError)
    assert "expired" in str(result)
