"""Gateway overhead: N sequential tools/call echo round trips, direct versus through the gateway.

Same harness, same run: the official MCP Python SDK client talks either straight to the server or
to ``stockade gateway`` fronting it (stdio, and Streamable HTTP for the SDK echo server). Prints
p50/p99 latency, calls/s and the ratios.

    .venv/bin/python bench/bench_gateway.py [--calls 1000] [--sandbox]

Targets: server-everything (npm, installed into /tmp/stockade-test-npm), an echo server written
with the official Python SDK, and a hand-written Python echo server. ``--sandbox`` adds rows where
the gateway runs server-everything and the Python server inside gVisor (needs root and runsc).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parents[1]
EVIL = ROOT / "tests" / "gateway" / "servers" / "evil_server.py"
SDK_ECHO = ROOT / "tests" / "gateway" / "servers" / "sdk_echo.py"
TOKEN = "bench-token-0123456789abcdef"  # noqa: S105 - a throwaway local credential
NPM_DIR = Path(tempfile.gettempdir()) / "stockade-test-npm"
EVERYTHING = (
    NPM_DIR / "node_modules" / "@modelcontextprotocol" / "server-everything" / "dist" / "index.js"
)


async def measure(params: Any, tool: str, calls: int) -> list[float]:
    lat: list[float] = []
    if isinstance(params, str):  # a Streamable HTTP URL
        import httpx2
        from mcp.client.streamable_http import streamable_http_client

        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"}) as http,
            Client(streamable_http_client(params, http_client=http)) as client,
        ):
            return await _loop(client, tool, calls, lat)
    async with Client(params, read_timeout_seconds=60) as client:
        return await _loop(client, tool, calls, lat)


async def _loop(client: Client, tool: str, calls: int, lat: list[float]) -> list[float]:
    await client.call_tool(tool, {"message": "warm"})
    for i in range(calls):
        t0 = time.perf_counter()
        r = await client.call_tool(tool, {"message": f"m{i}"})
        lat.append(time.perf_counter() - t0)
        assert not r.is_error, r
    return lat


def summary(name: str, lat: list[float]) -> dict[str, float]:
    q = statistics.quantiles(lat, n=100)
    out = {"p50": q[49] * 1000, "p99": q[98] * 1000, "cps": len(lat) / sum(lat)}
    p50, p99, cps = out["p50"], out["p99"], out["cps"]
    print(f"  {name:<34} p50 {p50:7.3f} ms  p99 {p99:7.3f} ms  {cps:8.1f} calls/s")
    return out


def gateway_params(home: Path, server: dict[str, Any], *, sandbox: bool) -> StdioServerParameters:
    policy = home / f"policy-{server['name']}.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "gateway": {"servers": [server], "rate_per_minute": 10**6, "rate_burst": 10**6},
            }
        )
    )
    args = ["-m", "stockade", "gateway", "--policy", str(policy), "--stdio"]
    if not sandbox:
        args.append("--unsafe-no-sandbox")
    return StdioServerParameters(
        command=sys.executable,
        args=args,
        env={"STOCKADE_HOME": str(home), "PATH": os.environ.get("PATH", "")},
    )


def ensure_everything() -> bool:
    if EVERYTHING.exists():
        return True
    npm = shutil.which("npm")
    if npm is None:
        return False
    subprocess.run(
        [
            npm,
            "install",
            "--prefix",
            str(NPM_DIR),
            "--no-audit",
            "--no-fund",
            "@modelcontextprotocol/server-everything",
        ],
        check=False,
        capture_output=True,
        timeout=300,
    )
    return EVERYTHING.exists()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--sandbox", action="store_true")
    ns = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="stockade-bench-"))
    rows: list[tuple[str, StdioServerParameters, StdioServerParameters, str, str]] = []
    node = shutil.which("node")
    if node and ensure_everything():
        direct = StdioServerParameters(command=node, args=[str(EVERYTHING), "stdio"])
        spec = {
            "name": "everything",
            "command": [node, str(EVERYTHING), "stdio"],
            "tofu": True,
            "tools": {"echo": {"action": "allow"}},
        }
        rows.append(
            (
                "server-everything, stdio",
                direct,
                gateway_params(home, spec, sandbox=False),
                "echo",
                "everything__echo",
            )
        )
    else:
        print("server-everything unavailable (node/npm missing): skipped")
    sdk_direct = StdioServerParameters(command=sys.executable, args=[str(SDK_ECHO)])
    sdk_spec = {
        "name": "sdk",
        "command": [sys.executable, str(SDK_ECHO)],
        "tofu": True,
        "tools": {"echo": {"action": "allow"}},
    }
    sdk_via = gateway_params(home, sdk_spec, sandbox=False)
    rows.append(("python SDK echo server, stdio", sdk_direct, sdk_via, "echo", "sdk__echo"))
    py_direct = StdioServerParameters(command=sys.executable, args=[str(EVIL), "plain"])
    py_spec = {
        "name": "py",
        "command": [sys.executable, str(EVIL), "plain"],
        "tofu": True,
        "tools": {"echo": {"action": "allow"}},
    }
    rows.append(
        (
            "python echo server, stdio",
            py_direct,
            gateway_params(home, py_spec, sandbox=False),
            "echo",
            "py__echo",
        )
    )
    if ns.sandbox and node and EVERYTHING.exists():
        boxed_e = {
            "name": "everything",
            "command": [str(Path(node).resolve()), str(EVERYTHING), "stdio"],
            "tofu": True,
            "tools": {"echo": {"action": "allow"}},
            "sandbox": {"binds": [{"source": str(NPM_DIR), "target": str(NPM_DIR)}]},
        }
        direct = StdioServerParameters(command=node, args=[str(EVERYTHING), "stdio"])
        via = gateway_params(home, boxed_e, sandbox=True)
        rows.append(("server-everything, gVisor", direct, via, "echo", "everything__echo"))
    if ns.sandbox:
        boxed = {
            "name": "boxed",
            "command": ["/usr/bin/python3", "/opt/srv/evil_server.py", "plain"],
            "tofu": True,
            "tools": {"echo": {"action": "allow"}},
            "sandbox": {"binds": [{"source": str(EVIL.parent), "target": "/opt/srv"}]},
        }
        rows.append(
            (
                "python echo server, gVisor",
                py_direct,
                gateway_params(home, boxed, sandbox=True),
                "echo",
                "boxed__echo",
            )
        )
    print(f"{ns.calls} sequential tools/call echo round trips (MCP Python SDK client)")
    for title, direct, via, tool, gtool in rows:
        print(title)
        d = summary("direct", await measure(direct, tool, ns.calls))
        g = summary("via stockade gateway", await measure(via, gtool, ns.calls))
        r50, r99, rcps = g["p50"] / d["p50"], g["p99"] / d["p99"], g["cps"] / d["cps"]
        print(f"  ratio gateway/direct: p50 x{r50:.2f}  p99 x{r99:.2f}  throughput x{rcps:.2f}")
    await http_rows(home, ns.calls)
    shutil.rmtree(home, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_port(port: int) -> None:
    for _ in range(300):
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


async def http_rows(home: Path, calls: int) -> None:
    """Streamable HTTP: the SDK echo server served directly vs the gateway fronting it (stdio)."""
    from stockade.secrets import DirectorySecretStore

    (home / "secrets").mkdir(mode=0o700, exist_ok=True)
    DirectorySecretStore(home / "secrets").put("bench-token", TOKEN.encode())
    spec = {
        "name": "sdk",
        "command": [sys.executable, str(SDK_ECHO)],
        "tofu": True,
        "tools": {"echo": {"action": "allow"}},
    }
    policy = home / "policy-http.yaml"
    gw = {"servers": [spec], "clients": ["bench"], "rate_per_minute": 10**6, "rate_burst": 10**6}
    policy.write_text(yaml.safe_dump({"gateway": gw}))
    p1, p2 = free_port(), free_port()
    env = {**os.environ, "STOCKADE_HOME": str(home)}
    direct = subprocess.Popen(
        [sys.executable, str(SDK_ECHO), "http", str(p1)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    argv = [sys.executable, "-m", "stockade", "gateway", "--policy", str(policy)]
    argv += ["--http", f"127.0.0.1:{p2}", "--client-token", "bench=bench-token"]
    argv += ["--unsafe-no-sandbox"]
    via = subprocess.Popen(
        argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await wait_port(p1)
        await wait_port(p2)
        print("python SDK echo server, Streamable HTTP")
        d = summary("direct", await measure(f"http://127.0.0.1:{p1}/mcp", "echo", calls))
        g = summary(
            "via stockade gateway", await measure(f"http://127.0.0.1:{p2}/mcp", "sdk__echo", calls)
        )
        r50, r99, rcps = g["p50"] / d["p50"], g["p99"] / d["p99"], g["cps"] / d["cps"]
        print(f"  ratio gateway/direct: p50 x{r50:.2f}  p99 x{r99:.2f}  throughput x{rcps:.2f}")
    finally:
        for proc in (direct, via):
            proc.terminate()
            proc.wait(15)


if __name__ == "__main__":
    asyncio.run(main())
