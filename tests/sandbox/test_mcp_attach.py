"""A real MCP server (the Python SDK) speaks over stdio from inside gVisor with no network."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stockade.errors import SandboxError
from stockade.models import Bind, EndReason, SandboxSpec
from stockade.sandbox import Sandbox, find_gvisor, launch

SERVER = '''
from mcp.server.mcpserver import MCPServer

server = MCPServer("stockade-demo")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


server.run()
'''


@pytest.fixture
def app_dir() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    mcp = pytest.importorskip("mcp.server.mcpserver", reason="MCP SDK 2.x NOT INSTALLED")
    del mcp
    d = Path(tempfile.mkdtemp(prefix="stockade-mcp-"))
    d.chmod(0o755)
    (d / "server.py").write_text(SERVER)
    (d / "server.py").chmod(0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def _rpc(sb: Sandbox, message: dict[str, Any]) -> None:
    assert sb.stdin is not None
    sb.stdin.write(json.dumps(message).encode() + b"\n")
    sb.stdin.flush()


@pytest.mark.gvisor
@pytest.mark.slow
def test_an_mcp_server_runs_in_gvisor_and_answers_a_tool_call_over_stdio(
    app_dir: Path, tmp_path: Path
) -> None:
    import mcp

    site = str(Path(mcp.__file__).resolve().parents[1])
    spec = SandboxSpec(
        argv=("/usr/bin/python3", "/app/server.py"),
        binds=(Bind(source=site, target="/opt/site"), Bind(source=str(app_dir), target="/app")),
        env=(("PYTHONPATH", "/opt/site"),),
        memory_mb=512,
        cpu_seconds=30,
        timeout_s=60,
    )
    sb = launch(spec, state=tmp_path / "state", stdin=subprocess.PIPE)
    assert sb.stdout is not None
    assert sb.stderr is not None
    _rpc(sb, {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "stockade-test", "version": "0"}}})  # fmt: skip
    init = json.loads(sb.stdout.readline() or b"null")
    assert init is not None, sb.stderr.read().decode()[-2000:]
    assert init["result"]["serverInfo"]["name"] == "stockade-demo"
    _rpc(sb, {"jsonrpc": "2.0", "method": "notifications/initialized"})
    _rpc(sb, {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
              "params": {"name": "add", "arguments": {"a": 2, "b": 3}}})  # fmt: skip
    result = json.loads(sb.stdout.readline())
    assert result["result"]["structuredContent"] == {"result": 5}
    assert sb.stdin is not None
    sb.stdin.close()
    sb.stdout.read()
    sb.stderr.read()
    sb.stdout.close()
    sb.stderr.close()
    outcome = sb.wait(timeout=60)
    assert outcome.end_reason == EndReason.EXITED
