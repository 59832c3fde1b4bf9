"""End to end: the MCP SDK client -> ``stockade gateway --stdio`` -> a server in gVisor, with a
policy whose ``opa:`` section hands tool calls to a Rego module that denies one tool for one client.

mallory's ``util__echo`` is denied with the Rego reason (the server never receives it) while her
``util__ping`` and alice's ``util__echo`` go through; each OPA answer is in the audit log as an
``opa_decision`` event with its reason.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from _gwclient import gateway_client, recording_server, require_gvisor, tool_names

pytestmark = [pytest.mark.gvisor, pytest.mark.slow]

SCHEMA = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
    "additionalProperties": False,
}
SERVER = recording_server(
    "util",
    [{"name": n, "description": n, "inputSchema": SCHEMA} for n in ("echo", "ping")],
    record='{"tool": p.get("name"), "text": p.get("arguments", {}).get("text")}',
    reply='"ok " + p.get("name", "")',
)

REGO = """\
package stockade.tool_call

default decision := {"result": "allow"}

decision := {"result": "deny", "reason": "mallory may not echo"} if {
    input.client == "mallory"
    input.tool == "echo"
}
"""

POLICY = """\
version: 1
default: deny
clients:
  - name: alice
    servers: [util]
  - name: mallory
    servers: [util]
servers:
  - name: util
    command: ["/usr/bin/python3", "srv/server.py", "{outbox}"]
    tofu: true
    fs_allowlist:
      - path: outbox/
        mode: rw
    tools:
      rules:
        - tool: "*"
          action: allow
          tier: low
opa:
  mode: regopy
  modules: [rego/authz.rego]
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "srv").mkdir()
    (tmp_path / "srv" / "server.py").write_text(SERVER)
    (tmp_path / "rego").mkdir()
    (tmp_path / "rego" / "authz.rego").write_text(REGO)
    outbox = tmp_path / "outbox"
    outbox.mkdir()
    outbox.chmod(0o777)  # the sandboxed server runs as an unprivileged uid
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(outbox=outbox))
    return policy, outbox


async def _session(tmp_path: Path, policy: Path, client: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with gateway_client(
        tmp_path, policy, "--client", client, read_timeout_s=90, inherit_env=True
    ) as c:
        seen["tools"] = await tool_names(c)
        seen["echo"] = await c.call_tool("util__echo", {"text": f"from {client}"})
        seen["ping"] = await c.call_tool("util__ping", {"text": f"from {client}"})
    return seen


def _audit_events(home: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in sorted(home.rglob("*.jsonl")):
        for line in f.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("type") == "opa_decision":
                out.append(event)
    return out


@pytest.mark.guarantee("cp-opa-gateway-deny")
def test_a_rego_module_denies_one_tool_for_one_client_through_a_real_gateway(
    tmp_path: Path,
) -> None:
    require_gvisor()
    policy, outbox = _setup(tmp_path)
    mallory = asyncio.run(asyncio.wait_for(_session(tmp_path, policy, "mallory"), 180))
    alice = asyncio.run(asyncio.wait_for(_session(tmp_path, policy, "alice"), 180))

    assert "util__echo" not in mallory["tools"]  # listing asks OPA too
    assert mallory["echo"].is_error
    assert "mallory may not echo" in mallory["echo"].content[0].text
    assert not mallory["ping"].is_error
    assert "util__echo" in alice["tools"]
    assert not alice["echo"].is_error
    assert not alice["ping"].is_error

    received = [json.loads(x) for x in (outbox / "received.jsonl").read_text().splitlines()]
    assert {"tool": "echo", "text": "from mallory"} not in received
    assert {"tool": "echo", "text": "from alice"} in received
    assert {"tool": "ping", "text": "from mallory"} in received

    events = _audit_events(tmp_path / "home")
    denied = [e["data"] for e in events if e["data"]["result"] == "deny"]
    assert denied == [
        {
            "client": "mallory",
            "server": "util",
            "tool": "echo",
            "result": "deny",
            "reason": "mallory may not echo",
            "rule": "opa:stockade.tool_call.decision",
        }
    ]
    assert any(e["data"]["client"] == "alice" and e["data"]["result"] == "allow" for e in events)
