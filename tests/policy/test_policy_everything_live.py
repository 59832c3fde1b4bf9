"""The everything example against the real @modelcontextprotocol/server-everything (node)."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest

from _npm import everything_entry
from stockade.models import ToolCall
from stockade.policy import DecisionContext, decide, load_policy

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policies" / "everything.yaml"
LEGACY_NAMES = {"add", "printEnv"}  # names of older server releases, kept in the example


@pytest.fixture(scope="module")
def entry() -> Path:
    return everything_entry()


class _Session:
    """A minimal stdio JSON-RPC client with bounded waits (no sleeps)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.buffer = b""

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def receive(self, deadline: float) -> dict[str, Any] | None:
        assert self.proc.stdout is not None
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.proc.stdout], [], [], left)
            if not ready:
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def request(self, id_: int, method: str, params: dict[str, Any], deadline: float) -> Any:
        self.send({"jsonrpc": "2.0", "id": id_, "method": method, "params": params})
        while (m := self.receive(deadline)) is not None:
            if m.get("id") == id_:
                return m.get("result")
        pytest.fail(f"server-everything did not answer {method} in time")


def list_tools(entry: Path) -> list[str]:
    node = shutil.which("node")
    assert node is not None
    proc = subprocess.Popen(
        [node, str(entry), "stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )
    try:
        s = _Session(proc)
        deadline = time.monotonic() + 30
        s.request(
            1,
            "initialize",
            {
                "protocolVersion": "2025-06-18",
                "capabilities": {"sampling": {}, "elicitation": {}, "roots": {}},
                "clientInfo": {"name": "stockade-test", "version": "0"},
            },
            deadline,
        )
        s.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        # Capability-dependent tools are registered after initialization; ask until they appear
        # (or the deadline passes, then the assertion below names what is missing).
        names: list[str] = []
        for i in range(2, 40):
            result = s.request(i, "tools/list", {}, deadline)
            names = [t["name"] for t in result["tools"]]
            if any(n.startswith("trigger-sampling") for n in names):
                break
            s.receive(min(deadline, time.monotonic() + 0.5))  # e.g. tools/list_changed
            if time.monotonic() >= deadline:
                break
        return names
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()


@pytest.mark.node
def test_the_example_matches_the_tools_the_real_server_lists(entry: Path) -> None:
    tools = list_tools(entry)
    assert "echo" in tools
    policy = load_policy(EXAMPLE)
    rules = policy.server("everything").tools.rules
    # every rule that names a tool (or a glob of tools) still matches something the server offers
    for rule in rules:
        if rule.tool in LEGACY_NAMES:
            continue
        assert any(fnmatchcase(t, rule.tool) for t in tools), (rule.tool, tools)
    # and every listed tool gets a decision; environment dumps are denied
    for tool in tools:
        call = ToolCall(server="everything", tool=tool, client="local-agent")
        decision, _ = decide(policy, call, DecisionContext(now=0.0))
        if "env" in tool.lower():
            assert decision.kind == "deny", tool
