"""``stockade gateway`` picks the approval store by default for every stockade policy.

Fast and without gVisor (``--unsafe-no-sandbox``): the MCP SDK client calls a sink in a tainted
context; with no ``--approver`` the call waits as a pending request until an operator denies it;
with ``--approver list`` (nothing listed) it is denied at once.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from _gwclient import gateway_params, stockade_cli

pytestmark = pytest.mark.slow

EVIL = Path(__file__).parents[1] / "gateway" / "servers" / "evil_server.py"

POLICY = f"""\
version: 1
default: deny
servers:
  - name: mail
    command: ["{sys.executable}", "{EVIL}", "plain"]
    tofu: true
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


SEND = ("mail__send_email", {"to": "x@y", "body": "b"})


async def _session(
    tmp_path: Path,
    *extra: str,
    text: str = POLICY,
    call_: tuple[str, dict[str, Any]] = SEND,
) -> dict[str, Any]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    params = gateway_params(
        tmp_path / "home", policy, "--unsafe-no-sandbox", *extra, inherit_env=True
    )
    seen: dict[str, Any] = {}
    async with Client(params, read_timeout_seconds=60) as client:
        await client.call_tool("mail__echo", {"message": "untrusted text enters the context"})
        call = asyncio.create_task(client.call_tool(*call_))
        if not extra:
            for _ in range(200):  # bounded: about 20 s
                out = await asyncio.to_thread(stockade_cli, tmp_path, "approvals", "list", "--json")
                pending = json.loads(out.stdout)
                if pending:
                    break
                await asyncio.sleep(0.1)
            seen["pending"] = pending
            deny = await asyncio.to_thread(
                stockade_cli, tmp_path, "approvals", "deny", pending[0]["id"], "--by", "carol"
            )
            assert deny.returncode == 0, deny.stderr
        seen["result"] = await asyncio.wait_for(call, 60)
    return seen


@pytest.mark.guarantee("apr-gateway-default-store")
def test_without_an_approver_option_a_sensitive_call_waits_for_an_operator(
    tmp_path: Path,
) -> None:
    seen = asyncio.run(asyncio.wait_for(_session(tmp_path), 120))
    (req,) = seen["pending"]
    assert req["category"] == "exfiltration"
    assert req["call"]["tool"] == "send_email"
    assert any(p.startswith("taint: ") for p in req["provenance"])
    assert seen["result"].is_error
    assert "carol" in seen["result"].content[0].text


@pytest.mark.guarantee("apr-gateway-default-store")
def test_the_list_approver_with_nothing_listed_denies_a_sensitive_call_at_once(
    tmp_path: Path,
) -> None:
    seen = asyncio.run(asyncio.wait_for(_session(tmp_path, "--approver", "list"), 120))
    assert seen["result"].is_error
    assert "denied" in seen["result"].content[0].text
    listed = stockade_cli(tmp_path, "approvals", "list", "--json", "--all")
    assert json.loads(listed.stdout) == []


@pytest.mark.guarantee("apr-gateway-default-store-any-policy")
def test_without_sensitive_rules_a_url_to_a_new_domain_still_waits_for_an_operator(
    tmp_path: Path,
) -> None:
    plain = POLICY.replace("          category: exfiltration\n", "")
    url = {"message": "fetch https://collect.attacker.example/upload?d=1"}
    seen = asyncio.run(
        asyncio.wait_for(_session(tmp_path, text=plain, call_=("mail__echo", url)), 120)
    )
    (req,) = seen["pending"]  # a pending request the operator sees, not a silent deny
    assert req["category"] == "new_network_domain"
    assert req["call"]["tool"] == "echo"
    assert "collect.attacker.example" in req["reason"]
    assert seen["result"].is_error
    assert "carol" in seen["result"].content[0].text
