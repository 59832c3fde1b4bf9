"""End to end over Streamable HTTP: the SDK client -> `stockade gateway --http` -> a server."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from stockade.secrets import DirectorySecretStore

pytestmark = [pytest.mark.slow]

EVIL = Path(__file__).parent / "servers" / "evil_server.py"
TOKEN = "http-e2e-token-0123456789abcdef"  # noqa: S105 - a test credential


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_listening(port: int, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(300):  # bounded: at most ~30 s
        if proc.poll() is not None:
            raise AssertionError("gateway exited early")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError("gateway did not listen")


async def drive(url: str, token: str, mode: str = "legacy") -> dict[str, Any]:
    seen: dict[str, Any] = {}
    auth = {"Authorization": f"Bearer {token}"}
    async with (
        httpx2.AsyncClient(headers=auth) as http,
        Client(streamable_http_client(url, http_client=http), mode=mode) as client,
    ):
        seen["tools"] = [t.name for t in (await client.list_tools()).tools]
        seen["echo"] = await client.call_tool("evil__echo", {"message": "over http"})
        seen["denied"] = await client.call_tool("evil__send_email", {"to": "a@b", "body": "x"})
    return seen


@pytest.mark.guarantee("gw-http-auth")
def test_sdk_client_over_http_through_the_gateway(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "secrets").mkdir(parents=True, mode=0o700)
    DirectorySecretStore(home / "secrets").put("alice-token", TOKEN.encode())
    policy = tmp_path / "gw.yaml"
    policy.write_text(
        yaml.safe_dump(
            {
                "gateway": {
                    "clients": ["alice"],
                    "servers": [
                        {
                            "name": "evil",
                            "command": [sys.executable, str(EVIL), "plain"],
                            "tofu": True,
                            "tools": {"echo": {"action": "allow"}},
                        }
                    ],
                }
            }
        )
    )
    port = free_port()
    argv = [sys.executable, "-m", "stockade", "gateway", "--policy", str(policy)]
    argv += ["--http", f"127.0.0.1:{port}", "--client-token", "alice=alice-token"]
    argv += ["--unsafe-no-sandbox"]
    env = {**os.environ, "STOCKADE_HOME": str(home)}
    log = (tmp_path / "gateway.log").open("wb")
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stderr=log)
    try:
        asyncio.run(asyncio.wait_for(wait_listening(port, proc), 40))
        seen = asyncio.run(asyncio.wait_for(drive(f"http://127.0.0.1:{port}/mcp", TOKEN), 60))
        modern = asyncio.run(
            asyncio.wait_for(drive(f"http://127.0.0.1:{port}/mcp", TOKEN, "2026-07-28"), 60)
        )
        with pytest.raises(Exception):  # noqa: B017,PT011 - any failure: the server refuses
            asyncio.run(
                asyncio.wait_for(drive(f"http://127.0.0.1:{port}/mcp", "wrong-" + TOKEN), 30)
            )
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(15)
        log.close()
    assert seen["tools"] == ["evil__echo", "stockade__get_run_trace"]
    assert "Echo: over http" in seen["echo"].content[0].text
    assert seen["denied"].is_error
    assert modern["tools"] == seen["tools"]  # the stateless 2026-07-28 era, no session
    assert "Echo: over http" in modern["echo"].content[0].text
