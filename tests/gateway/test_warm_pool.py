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


@pytest.mark.guarantee("sandbox-pool-gateway")
def test_sigterm_stops_the_gateway_with_its_warm_pool_and_leaves_nothing_live(
    tmp_path: Path,
) -> None:
    """A supervisor's (or an impatient MCP client's) SIGTERM ends serving like Ctrl-C: the pool's
    booted sandbox is discarded and no live-run record stays behind."""
    import os
    import signal
    import subprocess
    import sys
    import time

    require_gvisor()
    srv = tmp_path / "srv"
    srv.mkdir()
    shutil.copy(EVIL, srv / "evil_server.py")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY.format(script=srv / "evil_server.py"))
    live = tmp_path / "home" / "sandbox" / "live"
    env = {"PATH": os.environ.get("PATH", ""), "STOCKADE_HOME": str(tmp_path / "home")}
    argv = [sys.executable, "-m", "stockade", "gateway", "--policy", str(policy), "--stdio"]
    proc = subprocess.Popen(  # stdin stays open: the gateway serves until the signal
        [*argv, "--approver", "list"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    try:
        end = time.monotonic() + 120
        while not list(live.glob("*.json")) and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.05)
        assert list(live.glob("*.json")), "the warm pool never booted its sandbox"
        assert proc.stdin is not None
        assert proc.stdout is not None
        hello = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}  # fmt: skip
        proc.stdin.write(json.dumps(hello).encode() + b"\n")
        proc.stdin.flush()
        assert b'"id":1' in proc.stdout.readline().replace(b" ", b"")  # serving now
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert b"stopping on a signal" in err, err
    assert not list(live.glob("*.json"))
