"""The MCP SDK client driving a real ``stockade gateway --stdio`` child process, for end-to-end
tests: one way to start it (its own ``STOCKADE_HOME``, a bounded read timeout) and the few
questions every such test asks (which tools are listed, is gVisor here).

Imported as ``_gwclient`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from subprocess import CompletedProcess

import pytest
from mcp import Client, StdioServerParameters

__all__ = [
    "gateway_client",
    "gateway_params",
    "outbox_server",
    "recording_server",
    "require_gvisor",
    "stockade_cli",
    "tool_names",
]


def require_gvisor() -> None:
    """Skip, loudly, where the gVisor backend cannot run (no runsc, or not root)."""
    if shutil.which("runsc") is None or os.geteuid() != 0:
        pytest.skip("GVISOR MISSING: needs runsc and root; run scripts/bootstrap as root")


def gateway_params(
    home: Path, policy: Path, *args: str, inherit_env: bool = False
) -> StdioServerParameters:
    """``python -m stockade gateway --policy POLICY --stdio ARGS...`` with ``STOCKADE_HOME=home``;
    its environment is PATH only, or this process's whole environment with ``inherit_env``."""
    base = dict(os.environ) if inherit_env else {"PATH": os.environ.get("PATH", "")}
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "stockade", "gateway", "--policy", str(policy), "--stdio", *args],
        env={**base, "STOCKADE_HOME": str(home)},
    )


def outbox_server(
    tmp_path: Path, filename: str, source: str, *, gvisor: bool = False
) -> tuple[str, str, Path]:
    """Write a server's ``source`` to ``tmp_path/srv/filename`` and make ``tmp_path/outbox`` for
    what it records. Returns the policy's ``command`` items (quoted YAML, the outbox to be added
    as the last argument), the ``fs_allowlist`` lines a gVisor run needs (empty otherwise) and the
    outbox. In gVisor the command is relative to the policy (its ``srv/`` tree is bound) and the
    outbox is writable by the sandbox's unprivileged uid; otherwise the script runs as a child."""
    srv = tmp_path / "srv"
    srv.mkdir(exist_ok=True)
    (srv / filename).write_text(source)
    outbox = tmp_path / "outbox"
    outbox.mkdir(exist_ok=True)
    if not gvisor:
        return f'"/usr/bin/python3", "{srv / filename}"', "", outbox
    outbox.chmod(0o777)  # the sandboxed server runs as an unprivileged uid
    allow = "    fs_allowlist:\n      - path: outbox/\n        mode: rw\n"
    return f'"/usr/bin/python3", "srv/{filename}"', allow, outbox


def stockade_cli(
    tmp_path: Path, *args: str, timeout_s: float = 60, stdin: str = ""
) -> CompletedProcess[str]:
    """``python -m stockade ARGS...`` with the same home as :func:`gateway_client` (bounded; its
    stdin is ``stdin``, so a ``gateway --stdio`` started this way ends at once)."""
    return subprocess.run(
        [sys.executable, "-m", "stockade", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={"PATH": os.environ.get("PATH", ""), "STOCKADE_HOME": str(tmp_path / "home")},
        check=False,
    )


@asynccontextmanager
async def gateway_client(
    tmp_path: Path,
    policy: Path,
    *args: str,
    read_timeout_s: float = 60,
    inherit_env: bool = False,
) -> AsyncIterator[Client]:
    """An SDK client session with a gateway whose home is ``tmp_path/home``."""
    params = gateway_params(tmp_path / "home", policy, *args, inherit_env=inherit_env)
    async with Client(params, read_timeout_seconds=read_timeout_s) as client:
        yield client


async def tool_names(client: Client) -> list[str]:
    """The names of the tools the gateway lists now."""
    return [t.name for t in (await client.list_tools()).tools]


_SERVER_HEAD = """\
import json, sys
from pathlib import Path
log = Path(sys.argv[1]) / "received.jsonl"
def note(entry):
    with log.open("a") as f:
        f.write(json.dumps(entry) + "\\n")
def send(msg):
    sys.stdout.write(json.dumps(msg) + "\\n")
    sys.stdout.flush()
"""
_SERVER_LOOP = """\
for raw in sys.stdin:
    msg = json.loads(raw)
    method, rid = msg.get("method"), msg.get("id")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": rid, "result": {"protocolVersion": "2025-11-25",
              "capabilities": {"tools": {}}, "serverInfo": {"name": NAME, "version": "1"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": rid, "result": {"tools": TOOLS}})
    elif method == "tools/call":
        p = msg.get("params") or {}
        note(RECORD)
        send({"jsonrpc": "2.0", "id": rid,
              "result": {"content": [{"type": "text", "text": REPLY}]}})
    elif rid is not None:
        send({"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "no"}})
"""


def recording_server(
    name: str, tools: list[dict[str, object]], *, record: str, reply: str, on_start: str = ""
) -> str:
    """The source of a small stdio MCP server (python3, no dependencies) that lists ``tools``,
    appends ``record`` (a Python expression over ``p``, the call's params, and ``msg``) as one JSON
    line to ``<argv[1]>/received.jsonl`` for every call, and answers with the text ``reply`` (an
    expression over the same names); ``on_start`` (an expression) is noted once when it starts."""
    body = _SERVER_HEAD + f"NAME = {name!r}\nTOOLS = json.loads({json.dumps(tools)!r})\n"
    if on_start:
        body += f"note({on_start})\n"
    return body + _SERVER_LOOP.replace("RECORD", record).replace("REPLY", reply)
