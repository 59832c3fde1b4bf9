"""The gateway act of ``stockade demo``: real MCP servers in gVisor behind ``stockade gateway``.

An MCP client (the official Python SDK) starts ``stockade gateway --stdio`` on the policy in
``examples/demo``: server-everything from the npm registry and a small server that performs a rug
pull. The act checks an allowed call, a denied call, the rug pull being blocked, and the run trace.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stockade.errors import SandboxError, UsageError
from stockade.store import RunStore
from stockade.textsafe import safe_text

from ._runs import render_trace

__all__ = [
    "EVERYTHING_ENTRY",
    "EVERYTHING_PACKAGE",
    "GatewayAct",
    "npm_install",
    "prepare_gateway_dir",
]

# Pinned: the demo policy's tool rules (and the tests') were written against this release's tools.
EVERYTHING_PACKAGE = "@modelcontextprotocol/server-everything@2026.8.31"
EVERYTHING_ENTRY = Path("node_modules/@modelcontextprotocol/server-everything/dist/index.js")
AGENT = "local-agent"


def _installed_version(prefix: Path, name: str) -> str | None:
    try:
        meta = json.loads((prefix / "node_modules" / name / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = meta.get("version") if isinstance(meta, dict) else None
    return version if isinstance(version, str) else None


def npm_install(prefix: Path, package: str, entry: Path) -> Path:
    """``prefix/entry``, asking npm to install ``package`` into ``prefix`` first when it is missing.

    ``package`` may pin an exact version (``name@1.2.3``, ``@scope/name@1.2.3``); an installed copy
    of another version is then replaced (a range such as ``name@22`` only asks for presence).
    Raises :class:`SandboxError` when npm is absent or fails.
    """
    name, _, version = package.rpartition("@") if package.rfind("@") > 0 else (package, "", "")
    exact = re.fullmatch(r"\d+\.\d+\.\d+", version) is not None
    path = prefix / entry
    if path.is_file() and (not exact or _installed_version(prefix, name) == version):
        return path
    npm = shutil.which("npm")
    if npm is None:
        raise SandboxError(
            f"npm is not installed, so {package} cannot be fetched",
            "install nodejs and npm (scripts/bootstrap or ./scripts/demo do it)",
        )
    prefix.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", package],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if proc.returncode != 0 or not path.is_file():
        raise SandboxError(
            f"npm install {package} failed: {safe_text(proc.stderr[-800:])}",
            "check that the npm registry is reachable, then try again",
        )
    return path


def prepare_gateway_dir(examples: Path, work: Path) -> Path:
    """Copy the demo policy and servers into ``work`` and install server-everything beside them.

    node_modules is kept between runs (npm is only asked when the pinned release is missing); pins
    are removed so every run shows first-sight pinning.
    """
    src = examples / "demo"
    if not (src / "policy.yaml").is_file():
        raise UsageError(f"{src}/policy.yaml is missing", "run the demo from a source checkout")
    work.mkdir(mode=0o755, parents=True, exist_ok=True)
    shutil.rmtree(work / "pins", ignore_errors=True)
    shutil.copy(src / "policy.yaml", work / "policy.yaml")
    shutil.copytree(src / "weather", work / "weather", dirs_exist_ok=True)
    npm_install(work, EVERYTHING_PACKAGE, EVERYTHING_ENTRY)
    return work


async def _session(policy: Path, home: Path) -> dict[str, Any]:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "stockade", "gateway", "--policy", str(policy), "--stdio", "--client", AGENT],
        env={"STOCKADE_HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd=str(policy.parent),
    )
    seen: dict[str, Any] = {}
    async with Client(params, read_timeout_seconds=90) as client:
        seen["tools"] = [t.name for t in (await client.list_tools()).tools]
        seen["echo"] = await client.call_tool("everything__echo", {"message": "hello, stockade"})
        seen["env"] = await client.call_tool("everything__get-env", {})
        seen["forecast"] = await client.call_tool("weather__forecast", {"city": "Oslo"})
        # The server now rewrites its tool and announces list_changed; the gateway re-lists in
        # the background. Wait (bounded: 10 s) until the changed tool is hidden.
        after: list[str] = seen["tools"]
        for _ in range(40):
            after = [t.name for t in (await client.list_tools()).tools]
            if "weather__forecast" not in after:
                break
            await asyncio.sleep(0.25)
        seen["after"] = after
        seen["rugpull"] = await client.call_tool("weather__forecast", {"city": "Oslo"})
        seen["trace"] = await client.call_tool("stockade__get_run_trace", {})
    return seen


def _text(result: Any) -> str:
    blocks = getattr(result, "content", None) or []
    return " ".join(getattr(b, "text", "") for b in blocks)


class GatewayAct:
    """Runs the session and reports each expectation through ``expect``."""

    def __init__(
        self, expect: Callable[[bool, str], None], echo: Callable[[str], None], home: Path
    ) -> None:
        self.expect, self.echo, self.home = expect, echo, home

    def run(self, examples: Path) -> None:
        if os.geteuid() != 0 or shutil.which("runsc") is None:
            self.expect(
                False,
                "gVisor needs root and runsc: run ./scripts/demo as root (it installs runsc)",
            )
            return
        work = prepare_gateway_dir(examples, self.home / "cache" / "gateway")
        self.echo(f"  policy {work / 'policy.yaml'} (servers: everything, weather; gVisor)")
        seen = asyncio.run(asyncio.wait_for(_session(work / "policy.yaml", self.home), 180))
        tools = seen["tools"]
        self.expect(
            {"everything__echo", "weather__forecast"} <= set(tools)
            and "everything__get-env" not in tools,
            f"tools/list: {', '.join(tools)} (get-env hidden: the policy denies it)",
        )
        echo = seen["echo"]
        self.expect(
            not echo.is_error and "hello, stockade" in _text(echo) and "untrusted" in _text(echo),
            f"allowed  everything__echo -> {safe_text(_text(echo), single_line=True, limit=90)}",
        )
        env = seen["env"]
        self.expect(
            env.is_error and "denied" in _text(env),
            f"denied   everything__get-env -> {safe_text(_text(env), single_line=True, limit=90)}",
        )
        fc = seen["forecast"]
        self.expect(not fc.is_error, "allowed  weather__forecast (its definition pinned on sight)")
        rug = seen["rugpull"]
        self.expect(
            "weather__forecast" not in seen["after"] and rug.is_error,
            "rug pull: the server rewrote forecast's description -> tool hidden; the call -> "
            + safe_text(_text(rug), single_line=True, limit=80),
        )
        servers = (seen["trace"].structured_content or {}).get("servers", {})
        for name in ("everything", "weather"):
            t = servers.get(name, {})
            run = t.get("run", {})
            self.expect(
                run.get("backend") == "gvisor" and t.get("gvisor_waived") is False,
                f"get_run_trace {name}: run {run.get('run_id', '?')} on "
                f"{run.get('backend', '?')}, network {run.get('network_profile', {}).get('mode')}, "
                f"{len(t.get('decisions', []))} decision(s)",
            )
        run_id = servers.get("everything", {}).get("run", {}).get("run_id")
        if run_id:
            with RunStore.open(self.home / "runs.db") as store:
                self.echo(f"\n  $ stockade trace {run_id}")
                for line in render_trace(store.trace(run_id)).splitlines():
                    self.echo(f"    {line}")
