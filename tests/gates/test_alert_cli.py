"""``--alert-command`` / ``--alert-webhook`` on ``stockade kill`` and ``stockade gateway``."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from _gwclient import gateway_client

EVIL = Path(__file__).parents[1] / "gateway" / "servers" / "evil_server.py"


def hook_command(out: Path) -> str:
    """A real command hook: appends each alert (JSON on stdin) as one line to ``out``."""
    code = f"import sys; open({str(out)!r}, 'a').write(sys.stdin.read() + '\\n')"
    return shlex.join([sys.executable, "-c", code])


def alerts(out: Path) -> list[dict[str, Any]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def stockade(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stockade", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "STOCKADE_HOME": str(tmp_path / "home")},
        check=False,
    )


@pytest.mark.guarantee("cp-alert-kill-switch")
@pytest.mark.guarantee("cp-alert-cli")
def test_stockade_kill_with_an_alert_command_fires_it_when_the_switch_trips(
    tmp_path: Path,
) -> None:
    out = tmp_path / "alerts.jsonl"
    r = stockade(tmp_path, "kill", "--reason", "incident 7", "--by", "dana", "--alert-command",
                 hook_command(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    (alert,) = alerts(out)
    assert alert["kind"] == "kill_switch"
    assert "dana" in alert["detail"]
    assert "incident 7" in alert["detail"]
    # the event the alert rode on is in the audit log, created for it
    log = (tmp_path / "home" / "audit" / "audit.jsonl").read_text()
    assert "approval.kill_switch" in log


def test_lifting_the_kill_switch_with_an_alert_command_fires_nothing(tmp_path: Path) -> None:
    out = tmp_path / "alerts.jsonl"
    r = stockade(tmp_path, "kill", "--lift", "--reason", "over", "--alert-command",
                 hook_command(out))  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert alerts(out) == []


@pytest.mark.parametrize(
    "url", ["http://alerts.example.com/hook", "ftp://127.0.0.1/x", "http://10.0.0.1/hook"]
)
def test_a_plain_http_webhook_off_loopback_is_refused_before_the_switch_moves(
    tmp_path: Path, url: str
) -> None:
    r = stockade(tmp_path, "kill", "--reason", "x", "--alert-webhook", url)
    assert r.returncode != 0
    assert "https" in r.stderr
    status = stockade(tmp_path, "approvals", "list")
    assert "ENGAGED" not in status.stdout


def test_a_gateway_with_a_non_loopback_http_webhook_refuses_to_start(tmp_path: Path) -> None:
    policy = write_policy(tmp_path)
    r = stockade(tmp_path, "gateway", "--policy", str(policy), "--stdio", "--unsafe-no-sandbox",
                 "--alert-webhook", "http://alerts.example.com/hook")  # fmt: skip
    assert r.returncode != 0
    assert "https" in r.stderr


def write_policy(tmp_path: Path) -> Path:
    policy = {
        "version": 1,
        "default": "deny",
        "gateway": {
            "servers": [
                {
                    "name": "evil",
                    "command": [sys.executable, str(EVIL), "crash"],
                    "tofu": True,
                    "tools": {"echo": {"action": "allow"}},
                }
            ]
        },
    }
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(policy))
    return path


async def crash_session(tmp_path: Path, policy: Path, out: Path) -> Any:
    async with gateway_client(
        tmp_path,
        policy,
        "--unsafe-no-sandbox",
        "--alert-command",
        hook_command(out),
        read_timeout_s=30,
    ) as client:
        crashed = await client.call_tool("evil__echo", {"message": "boom"})
        for _ in range(500):  # bounded: the supervisor restarts the crashed server
            if alerts(out):
                break
            await client.list_tools()
            await asyncio.sleep(0.02)
    return crashed


@pytest.mark.slow
@pytest.mark.guarantee("cp-alert-server-down")
@pytest.mark.guarantee("cp-alert-cli")
def test_a_gateway_with_an_alert_command_fires_it_when_a_downstream_server_crashes(
    tmp_path: Path,
) -> None:
    out = tmp_path / "alerts.jsonl"
    policy = write_policy(tmp_path)
    crashed = asyncio.run(asyncio.wait_for(crash_session(tmp_path, policy, out), 120))
    assert crashed.is_error
    kinds = {a["kind"] for a in alerts(out)}
    assert kinds & {"server_crashed", "server_unreachable"}, alerts(out)
    assert all(a["subject"] == "evil" for a in alerts(out))
