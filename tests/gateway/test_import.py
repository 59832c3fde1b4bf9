"""Importing {"mcpServers": ...} client configurations as policies."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stockade.gateway import ConfigError, import_mcp_servers
from stockade.policy import load_policy

CONFIG = {
    "mcpServers": {
        "GitHub_Server": {
            "command": "npx",
            "args": ["-y", "@modelcontextprotocol/server-github"],
            "env": {
                # pragma: allowlist nextline secret
                "GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "LOG_LEVEL": "info",
                "OPAQUE": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",  # pragma: allowlist secret
            },
        },
        "fs": {"command": "node", "args": ["fs.js", "/data"]},
        "remote": {"url": "https://mcp.example.invalid/mcp"},
    }
}


@pytest.mark.guarantee("gw-import-no-secret-in-policy")
def test_credentials_move_to_the_secret_store_and_never_into_the_policy() -> None:
    result = import_mcp_servers(CONFIG)
    text = json.dumps(result.doc)
    assert "ghp_" not in text
    assert "a1b2c3d4e5f6" not in text  # pragma: allowlist secret
    gh = result.doc["servers"][0]
    assert gh["name"] == "github-server"
    assert gh["env"] == {"LOG_LEVEL": "info"}
    assert gh["secrets"] == ["github-server.GITHUB_PERSONAL_ACCESS_TOKEN", "github-server.OPAQUE"]
    assert result.secrets["github-server.GITHUB_PERSONAL_ACCESS_TOKEN"].startswith("ghp_")


def test_imported_servers_allow_no_tools_and_remote_servers_are_skipped() -> None:
    result = import_mcp_servers(CONFIG)
    assert [s["name"] for s in result.doc["servers"]] == ["github-server", "fs"]
    assert all(s["tools"]["rules"] == [] for s in result.doc["servers"])
    assert any("remote" in n and "skipped" in n for n in result.notes)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"mcpServers": []},
        {"mcpServers": {"a": 1}},
        {"mcpServers": {"a": {"command": 5}}},
        {"mcpServers": {"a-": {"command": "x"}, "a": {"command": "y"}}},
    ],
)
def test_malformed_configurations_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError):
        import_mcp_servers(bad)


def test_the_cli_writes_a_policy_that_loads_and_stores_the_secrets(tmp_path: Path) -> None:
    cfg = tmp_path / "claude.json"
    cfg.write_text(json.dumps(CONFIG))
    out = tmp_path / "policy.yaml"
    secrets = tmp_path / "secrets"
    argv = [sys.executable, "-m", "stockade", "policy", "import", str(cfg), "--out", str(out)]
    env = {**os.environ, "STOCKADE_HOME": str(tmp_path / "home")}
    run = subprocess.run(
        [*argv, "--secret-dir", str(secrets)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "ghp_" not in out.read_text()
    policy = load_policy(out)
    assert [s.name for s in policy.servers] == ["github-server", "fs"]
    stored = sorted(p.name for p in secrets.iterdir())
    assert len(stored) == 2
    again = subprocess.run(
        [*argv, "--secret-dir", str(secrets)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert again.returncode != 0  # never overwrites
