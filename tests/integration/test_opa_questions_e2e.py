"""End to end: the MCP SDK client -> ``stockade gateway --stdio --unsafe-no-sandbox`` (the servers
run as child processes: the OPA wiring is the point, gVisor is tested elsewhere) with
a policy that delegates ``data_access`` and ``delegation`` to a Rego module.

data_access: after the agent reads the ``web`` server's output in a conversation, its call to the
``mail`` server in that conversation is denied with the Rego reason (the mail server never receives
it); the same call in a clean conversation goes through and OPA is not asked. delegation: the host
application's registration of a conversation with an instruction Rego refuses is refused with the
Rego reason, and that conversation stays tainted. Every answer is an ``opa_decision`` audit event.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from _gwclient import gateway_client, outbox_server, recording_server

pytestmark = pytest.mark.slow

HOST_TOKEN = "host-token-0123456789abcdef"  # noqa: S105 - a test value
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}

REGO = """\
package stockade
import rego.v1

data_access.decision := {
    "result": "deny",
    "reason": sprintf("web content may not steer %s.%s", [input.server, input.tool]),
} if {
    "web" in input.extra.from_servers
    input.server == "mail"
} else := {"result": "allow", "reason": "no cross-namespace rule"}

delegation.decision := {"result": "allow", "reason": "a short instruction"} if {
    input.extra.instruction_length <= 100
} else := {
    "result": "deny",
    "reason": sprintf("instructions for %s are at most 100 characters", [input.extra.delegate_to]),
}
"""

POLICY = """\
version: 1
default: deny
servers:
  - name: web
    command: [{web}, "{outbox}"]
    tofu: true
    tools:
      rules:
        - tool: fetch
          action: allow
          tier: low
  - name: mail
    command: [{mail}, "{outbox}"]
    tofu: true
    tools:
      rules:
        - tool: send
          action: allow
          tier: low
opa:
  mode: regopy
  modules: [rego/authz.rego]
  delegate: [data_access, delegation]
"""


def _setup(tmp_path: Path) -> tuple[Path, Path]:
    commands = {}
    outbox = tmp_path / "outbox"
    for name, tool in (("web", "fetch"), ("mail", "send")):
        source = recording_server(
            name,
            [{"name": tool, "description": tool, "inputSchema": SCHEMA}],
            record=f'{{"server": "{name}", "text": p.get("arguments", {{}}).get("text")}}',
            reply='"ok " + p.get("arguments", {}).get("text", "")',
        )
        commands[name], _, outbox = outbox_server(tmp_path, f"{name}.py", source)
    (tmp_path / "rego").mkdir()
    (tmp_path / "rego" / "authz.rego").write_text(REGO)
    (tmp_path / "host.token").write_text(HOST_TOKEN)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(outbox=outbox, **commands))
    return policy, outbox


async def _story(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    token = str(tmp_path / "host.token")
    args = ("--unsafe-no-sandbox", "--client", "agent", "--host-token-file", token)
    async with gateway_client(tmp_path, policy, *args, read_timeout_s=60) as client:

        async def register(conversation: str, instruction: str) -> Any:
            args = {"conversation": conversation, "instruction": instruction}
            return await client.call_tool(
                "stockade__register_context", {**args, "credential": HOST_TOKEN}
            )

        async def call(name: str, text: str, conversation: str) -> Any:
            meta: Any = {"stockade/conversation": conversation}
            return await client.call_tool(name, {"text": text}, meta=meta)

        seen["reg1"] = await register("conv-1", "summarise the news and mail it to me")
        seen["fetch"] = await call("web__fetch", "news", "conv-1")
        seen["steered"] = await call("mail__send", "after web", "conv-1")
        seen["reg2"] = await register("conv-2", "mail me a reminder")
        seen["clean"] = await call("mail__send", "clean", "conv-2")
        seen["reg3"] = await register("conv-3", "x" * 101)
    return seen


def _text(result: Any) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


def _audit(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "home" / "audit" / "audit.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines]


@pytest.mark.guarantee("cp-opa-data-access")
@pytest.mark.guarantee("cp-opa-delegation")
def test_rego_denies_cross_namespace_data_and_refuses_a_delegation_through_a_real_gateway(
    tmp_path: Path,
) -> None:
    policy, outbox = _setup(tmp_path)
    seen = asyncio.run(asyncio.wait_for(_story(tmp_path, policy), 120))

    for ok in ("reg1", "fetch", "reg2", "clean"):
        assert not seen[ok].is_error, (ok, _text(seen[ok]))
    assert seen["steered"].is_error
    assert "web content may not steer mail.send" in _text(seen["steered"])
    assert seen["reg3"].is_error
    assert "instructions for agent are at most 100 characters" in _text(seen["reg3"])

    received = [json.loads(x) for x in (outbox / "received.jsonl").read_text().splitlines()]
    assert {"server": "mail", "text": "after web"} not in received
    assert {"server": "mail", "text": "clean"} in received

    events = _audit(tmp_path)
    asked = [e["data"] for e in events if e["type"] == "opa_decision"]
    data_access = [d for d in asked if d["question"] == "data_access"]
    assert data_access == [
        {
            "question": "data_access",
            "client": "agent",
            "server": "mail",
            "tool": "send",
            "result": "deny",
            "reason": "web content may not steer mail.send",
            "rule": "opa:stockade.data_access.decision",
            "from_servers": ["web"],
        }
    ]  # the clean conversation's call was not asked
    delegation = [(d["delegate_to"], d["result"]) for d in asked if d["question"] == "delegation"]
    assert delegation == [("agent", "allow"), ("agent", "allow"), ("agent", "deny")]
    refused = [e["data"] for e in events if e["type"] == "gateway.register_context"][-1]
    assert (refused["conversation"], refused["ok"]) == ("conv-3", False)
