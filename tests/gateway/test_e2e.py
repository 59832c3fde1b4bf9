"""End to end: the official MCP Python SDK client -> `stockade gateway --stdio` -> real servers.

server-everything (npm) gives the allowed and the denied call; the hostile Python server performs
a rug pull mid-session. Downstream servers run as plain child processes (--unsafe-no-sandbox) until
the sandbox launcher is wired into the gateway.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from _gwclient import gateway_client, require_gvisor, tool_names

pytestmark = [pytest.mark.node, pytest.mark.slow]

EVIL = Path(__file__).parent / "servers" / "evil_server.py"
NPM_DIR = Path("/tmp/stockade-test-npm")


def write_policy(tmp_path: Path, everything_js: Path) -> Path:
    node = shutil.which("node")
    assert node is not None
    policy = {
        "version": 1,
        "default": "deny",
        "gateway": {
            "servers": [
                {
                    "name": "everything",
                    "command": [node, str(everything_js), "stdio"],
                    "package": "npm:@modelcontextprotocol/server-everything",
                    "package_tree": str(
                        NPM_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything"
                    ),
                    "tofu": True,
                    "tools": {"echo": {"action": "allow"}, "get-sum": {"action": "deny"}},
                },
                {
                    "name": "evil",
                    "command": [sys.executable, str(EVIL), "rugpull"],
                    "tofu": True,
                    "tools": {"echo": {"action": "allow"}},
                },
            ]
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


def stockade(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockade", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "STOCKADE_HOME": str(tmp_path / "home")},
        check=False,
    )


async def session(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with gateway_client(tmp_path, policy, "--unsafe-no-sandbox", read_timeout_s=30) as client:
        seen["tools"] = await tool_names(client)
        echo = await client.call_tool("everything__echo", {"message": "hello"})
        seen["echo"] = echo
        seen["sum"] = await client.call_tool("everything__get-sum", {"a": 1, "b": 2})
        seen["evil_first"] = await client.call_tool("evil__echo", {"message": "hi"})
        for _ in range(250):  # bounded wait for the gateway to re-pin after list_changed
            if "evil__echo" not in await tool_names(client):
                break
            await asyncio.sleep(0.02)
        seen["tools_after"] = await tool_names(client)
        seen["evil_again"] = await client.call_tool("evil__echo", {"message": "hi"})
    return seen


@pytest.mark.guarantee("gw-rugpull-hidden")
@pytest.mark.guarantee("gw-denial-is-tool-error")
@pytest.mark.guarantee("gw-results-untrusted")
def test_sdk_client_through_the_gateway_allows_denies_and_blocks_a_rug_pull(
    tmp_path: Path, everything_js: Path
) -> None:
    policy = write_policy(tmp_path, everything_js)
    seen = asyncio.run(asyncio.wait_for(session(tmp_path, policy), 120))

    assert "everything__echo" in seen["tools"]
    assert "everything__get-sum" not in seen["tools"]  # denied by policy: not even listed
    assert "evil__echo" in seen["tools"]

    echo = seen["echo"]
    assert not echo.is_error
    assert "Echo: hello" in echo.content[0].text
    assert echo.meta["stockade/trust"] == "untrusted"

    assert seen["sum"].is_error
    assert "denied" in seen["sum"].content[0].text

    assert not seen["evil_first"].is_error
    assert "evil__echo" not in seen["tools_after"]
    assert seen["evil_again"].is_error
    assert "pinning" in seen["evil_again"].content[0].text

    # the operator reviews the change and approves exactly the reviewed hash
    diff = stockade(tmp_path, "tools", "diff", "--policy", str(policy), "--json")
    assert diff.returncode == 0, diff.stderr
    pending = {(p["server"], p["tool"]): p for p in json.loads(diff.stdout)}
    rug = pending[("evil", "echo")]
    assert rug["reason"] == "changed"
    assert any(f["kind"] == "hidden-tag" for f in rug["findings"])
    human = stockade(tmp_path, "tools", "diff", "--policy", str(policy))
    assert "FINDING hidden-tag" in human.stdout

    wrong = stockade(
        tmp_path,
        "tools",
        "approve",
        "--policy",
        str(policy),
        "evil",
        "echo",
        "--hash",
        "sha256:" + "0" * 64,
    )
    assert wrong.returncode != 0
    assert "pending hash is" in wrong.stderr
    ok = stockade(
        tmp_path, "tools", "approve", "--policy", str(policy), "evil", "echo", "--hash", rug["hash"]
    )
    assert ok.returncode == 0, ok.stderr
    pins = json.loads((tmp_path / "pins" / "evil.pins.json").read_text())
    assert pins["tools"]["echo"]["hash"] == rug["hash"]
    assert pins["tools"]["echo"]["approved_by"].startswith("operator:")

    audit = (tmp_path / "home" / "audit" / "audit.jsonl").read_text().splitlines()
    types = [json.loads(line)["type"] for line in audit]
    assert "gateway.call" in types
    approvals = [json.loads(line)["data"] for line in audit if '"pin.approved"' in line]
    assert approvals[-1]["hash"] == rug["hash"]
    assert approvals[-1]["findings"]


REAL_POLICY = """\
version: 1
default: deny
servers:
  - name: evil
    command: ["/usr/bin/python3", "{script}", "plain"]
    tofu: true
    fs_allowlist:
      - path: srv/
    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
        - tool: send_email
          action: allow
          tier: medium
          category: exfiltration
"""


async def sandboxed_session(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    # --approver list: nothing auto-approved, so the sink call is denied at once (a sensitive
    # policy would otherwise default to the approval store and wait for an operator)
    async with gateway_client(tmp_path, policy, "--approver", "list") as client:
        seen["tools"] = await tool_names(client)
        seen["echo"] = await client.call_tool("evil__echo", {"message": "boxed"})
        seen["denied"] = await client.call_tool("evil__send_email", {"to": "a@b", "body": "x"})
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


@pytest.mark.gvisor
@pytest.mark.guarantee("gw-denial-is-tool-error")
def test_a_gvisor_sandboxed_server_under_a_real_policy_with_its_run_trace(tmp_path: Path) -> None:
    require_gvisor()
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(EVIL, srv / "evil_server.py")
    path = tmp_path / "policy.yaml"
    path.write_text(
        REAL_POLICY.format(script=srv / "evil_server.py"),
    )
    seen = asyncio.run(asyncio.wait_for(sandboxed_session(tmp_path, path), 120))
    assert "evil__echo" in seen["tools"]
    assert "stockade__get_run_trace" in seen["tools"]
    assert "Echo: boxed" in seen["echo"].content[0].text
    assert seen["denied"].is_error
    trace = seen["trace"].structured_content["servers"]["evil"]
    assert trace["run"]["backend"] == "gvisor"
    assert trace["run"]["kind"] == "server"
    assert trace["gvisor_waived"] is False
    outcomes = [d["data"]["outcome"] for d in trace["decisions"]]
    assert outcomes == ["ok", "denied:approval"]  # exfiltration sink in a tainted context
    assert trace["run"]["policy_hash"].startswith("sha256:")


async def everything_session(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with gateway_client(tmp_path, policy) as client:
        seen["tools"] = await tool_names(client)
        seen["echo"] = await client.call_tool("everything__echo", {"message": "in gvisor"})
        seen["env"] = await client.call_tool("everything__get-env", {})
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


@pytest.mark.gvisor
def test_server_everything_runs_in_gvisor_behind_the_gateway(
    tmp_path: Path, everything_js: Path
) -> None:
    require_gvisor()
    node = shutil.which("node")
    assert node is not None
    policy = {
        "gateway": {
            "servers": [
                {
                    "name": "everything",
                    "command": [str(Path(node).resolve()), str(everything_js), "stdio"],
                    "tofu": True,
                    "tools": {"echo": {"action": "allow"}, "get-env": {"action": "deny"}},
                    "sandbox": {
                        "binds": [{"source": str(NPM_DIR), "target": str(NPM_DIR)}],
                        "memory_mb": 512,
                    },
                }
            ]
        }
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    seen = asyncio.run(asyncio.wait_for(everything_session(tmp_path, path), 120))
    assert "everything__echo" in seen["tools"]
    assert "everything__get-env" not in seen["tools"]
    assert "Echo: in gvisor" in seen["echo"].content[0].text
    assert seen["env"].is_error
    trace = seen["trace"].structured_content["servers"]["everything"]
    assert trace["run"]["backend"] == "gvisor"
    assert trace["gvisor_waived"] is False


async def sdk_session(tmp_path: Path, policy: Path) -> dict[str, Any]:
    async with gateway_client(tmp_path, policy, "--unsafe-no-sandbox", read_timeout_s=30) as client:
        tools = await tool_names(client)
        echo = await client.call_tool("sdk__echo", {"message": "from the SDK server"})
        bad = await client.call_tool("sdk__echo", {"message": 5})
    return {"tools": tools, "echo": echo, "bad": bad}


@pytest.mark.guarantee("gw-args-validated")
def test_a_python_sdk_server_behind_the_gateway(tmp_path: Path) -> None:
    server = Path(__file__).parent / "servers" / "sdk_echo.py"
    spec = {
        "name": "sdk",
        "command": [sys.executable, str(server)],
        "tofu": True,
        "tools": {"echo": {"action": "allow"}},
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump({"gateway": {"servers": [spec]}}))
    seen = asyncio.run(asyncio.wait_for(sdk_session(tmp_path, path), 60))
    assert "sdk__echo" in seen["tools"]
    assert "Echo: from the SDK server" in seen["echo"].content[0].text
    assert seen["bad"].is_error
    assert "arguments" in seen["bad"].content[0].text


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "everything.yaml"


async def example_session(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with gateway_client(tmp_path, policy, "--client", "local-agent") as client:
        seen["tools"] = await tool_names(client)
        seen["echo"] = await client.call_tool("everything__echo", {"message": "example"})
        seen["sum"] = await client.call_tool("everything__get-sum", {"a": 2, "b": 3})
        seen["env"] = await client.call_tool("everything__get-env", {})
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


@pytest.mark.gvisor
def test_the_shipped_example_policy_serves_server_everything_in_gvisor(
    tmp_path: Path, everything_js: Path
) -> None:
    require_gvisor()
    if not EXAMPLE.exists():
        pytest.skip("EXAMPLE MISSING: examples/policies/everything.yaml is not in this checkout")
    shutil.copy(EXAMPLE, tmp_path / "everything.yaml")
    (tmp_path / "data").mkdir()
    shutil.copytree(NPM_DIR / "node_modules", tmp_path / "node_modules", symlinks=True)
    seen = asyncio.run(
        asyncio.wait_for(example_session(tmp_path, tmp_path / "everything.yaml"), 120)
    )
    assert {"everything__echo", "everything__get-sum"} <= set(seen["tools"])
    assert "everything__get-env" not in seen["tools"]
    assert "Echo: example" in seen["echo"].content[0].text
    assert "5" in seen["sum"].content[0].text
    assert seen["env"].is_error
    trace = seen["trace"].structured_content["servers"]["everything"]
    assert trace["run"]["backend"] == "gvisor"
    assert trace["run"]["policy_hash"].startswith("sha256:")
