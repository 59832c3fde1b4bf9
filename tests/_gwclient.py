"""The MCP SDK client driving a real ``stockade gateway --stdio`` child process, for end-to-end
tests: one way to start it (its own ``STOCKADE_HOME``, a bounded read timeout) and the few
questions every such test asks (which tools are listed, is gVisor here).

Imported as ``_gwclient`` (``tests/`` is on ``sys.path``).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

__all__ = ["gateway_client", "gateway_params", "require_gvisor", "tool_names"]


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
