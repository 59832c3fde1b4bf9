"""The MCP Inspector's CLI mode (@modelcontextprotocol/inspector --cli) drives the stdio gateway."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = [pytest.mark.node, pytest.mark.slow]


def test_the_inspector_cli_lists_tools_and_calls_echo_through_the_stdio_gateway(
    tmp_path: Path, everything_js: Path, node22: Path, inspector_js: Path
) -> None:
    node = shutil.which("node")
    assert node is not None
    server = {
        "name": "everything",
        "command": [node, str(everything_js), "stdio"],
        "tofu": True,
        "tools": {"echo": {"action": "allow"}, "get-env": {"action": "deny"}},
    }
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump({"gateway": {"servers": [server]}}))
    gateway = [sys.executable, "-m", "stockade", "gateway", "--policy", str(policy), "--stdio"]
    gateway.append("--unsafe-no-sandbox")  # the sandboxed path is covered by the conformance test
    env = {**os.environ, "STOCKADE_HOME": str(tmp_path / "home")}

    def inspect(*method: str) -> dict[str, object]:
        proc = subprocess.run(
            [str(node22), str(inspector_js), "--cli", *gateway, "--method", *method],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        out: dict[str, object] = json.loads(proc.stdout)
        return out

    listing = inspect("tools/list")
    names = [t["name"] for t in listing["tools"]]  # type: ignore[attr-defined]
    assert "everything__echo" in names
    assert "everything__get-env" not in names  # denied by policy: not listed
    echo = inspect("tools/call", "--tool-name", "everything__echo", "--tool-arg", "message=hi")
    assert echo["isError"] is False
    assert "Echo: hi" in echo["content"][0]["text"]  # type: ignore[index]
    assert echo["_meta"]["stockade/trust"] == "untrusted"  # type: ignore[index]
