"""``warm_pool: N`` in a policy server: ``stockade gateway`` serves it from a pooled sandbox."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from _gwclient import gateway_client, require_gvisor
from stockade.store import RunStore

pytestmark = [pytest.mark.gvisor, pytest.mark.slow]

EVIL = Path(__file__).parent / "servers" / "evil_server.py"

POLICY = """\
version: 1
default: deny
servers:
  - name: evil
    command: ["/usr/bin/python3", "{script}", "plain"]
    tofu: true
    warm_pool: 1
    fs_allowlist:
      - path: srv/
    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
"""


async def pooled_session(tmp_path: Path, policy: Path) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    async with gateway_client(tmp_path, policy, "--approver", "list") as client:
        seen["echo"] = await client.call_tool("evil__echo", {"message": "warm"})
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


@pytest.mark.guarantee("sandbox-pool-single-use")
@pytest.mark.guarantee("sandbox-pool-gateway")
def test_a_gateway_with_a_warm_pool_serves_from_a_pooled_sandbox_and_leaves_nothing_running(
    tmp_path: Path,
) -> None:
    require_gvisor()
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(EVIL, srv / "evil_server.py")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(script=srv / "evil_server.py"))

    seen = asyncio.run(asyncio.wait_for(pooled_session(tmp_path, policy), 180))

    assert "Echo: warm" in seen["echo"].content[0].text
    trace = seen["trace"].structured_content["servers"]["evil"]
    assert trace["run"]["backend"] == "gvisor"
    assert "sandbox.pooled" in json.dumps(trace)
    run_id = trace["run"]["run_id"]
    home = tmp_path / "home"
    with RunStore.open(home / "runs.db") as store:
        assert "sandbox.pooled" in [e.kind for e in store.evidence(run_id)]
        assert store.get(run_id).status.value != "running"
    # the gateway closed its pool on exit: no warm or taken sandbox is still live
    assert not list((home / "sandbox" / "live").glob("*.json"))
