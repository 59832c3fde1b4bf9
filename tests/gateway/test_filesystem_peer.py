"""The real ``@modelcontextprotocol/server-filesystem`` behind ``stockade gateway`` in gVisor.

The official MCP SDK client drives ``stockade gateway --stdio``; the server runs under ``node`` in
a gVisor sandbox whose only data mount is the policy's read-only ``fs_allowlist`` directory.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

from _gwclient import gateway_client, require_gvisor, tool_names
from conftest import NPM_DIR, npm_install

pytestmark = [pytest.mark.node, pytest.mark.gvisor, pytest.mark.slow]

FILESYSTEM = "@modelcontextprotocol/server-filesystem"
SECRET = "host-only marker 7f3a"  # noqa: S105 - a marker, not a credential  # pragma: allowlist secret
CONTENT = "hello from the allowlisted directory\n"


@pytest.fixture(scope="session")
def filesystem_js() -> Path:
    entry = NPM_DIR / "node_modules" / FILESYSTEM / "dist" / "index.js"
    if not entry.exists():
        if shutil.which("npm") is None or shutil.which("node") is None:
            pytest.skip("NODE MISSING: npm/node not installed; run scripts/bootstrap")
        npm_install(NPM_DIR, FILESYSTEM)
    assert entry.exists(), f"npm install {FILESYSTEM} left no {entry}"
    return entry


def write_policy(tmp_path: Path, entry: Path, *, allowed: str, path_rule: bool) -> Path:
    node = shutil.which("node")
    assert node is not None
    # a policy grants only paths under its own directory: the installed package is copied there
    pkg = tmp_path / "pkg"
    shutil.copytree(NPM_DIR / "node_modules", pkg / "node_modules", symlinks=True)
    entry = pkg / entry.relative_to(NPM_DIR)
    under = tmp_path / "data"
    rule = (
        f"          arguments:\n            rules:\n              path: {{path_under: [{under}]}}\n"
        if path_rule
        else ""
    )
    policy = (
        "version: 1\ndefault: deny\nservers:\n"
        "  - name: fs\n"
        f"    command: [{Path(node).resolve()}, {entry}, {allowed}]\n"
        "    tofu: true\n    memory_mb: 512\n"
        "    fs_allowlist:\n"
        "      - path: pkg/\n"
        "      - path: data/\n"
        "    tools:\n      rules:\n"
        "        - tool: read_text_file\n          action: allow\n          tier: low\n"
        + rule
        + "        - tool: list_allowed_directories\n          action: allow\n          tier: low\n"
        "        - tool: write_file\n          action: deny\n"
    )
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    return path


async def fs_session(tmp_path: Path, policy: Path, reads: list[str], *extra: str) -> dict[str, Any]:
    seen: dict[str, Any] = {"reads": []}
    async with gateway_client(tmp_path, policy, "--approver", "list", *extra) as client:
        seen["tools"] = await tool_names(client)
        for p in reads:
            seen["reads"].append(await client.call_tool("fs__read_text_file", {"path": p}))
        seen["write"] = await client.call_tool(
            "fs__write_file", {"path": str(tmp_path / "data" / "x.txt"), "content": "x"}
        )
    return seen


def text(result: Any) -> str:
    return "".join(getattr(c, "text", "") for c in result.content)


def setup(tmp_path: Path) -> None:
    require_gvisor()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "hello.txt").write_text(CONTENT)
    (tmp_path / "secret.txt").write_text(SECRET)


@pytest.mark.guarantee("gw-results-untrusted")
@pytest.mark.guarantee("gw-denial-is-tool-error")
@pytest.mark.guarantee("gw-fs-peer-contained")
def test_server_filesystem_reads_the_allowlisted_file_and_policy_refuses_other_paths(
    tmp_path: Path, filesystem_js: Path
) -> None:
    setup(tmp_path)
    policy = write_policy(tmp_path, filesystem_js, allowed=str(tmp_path / "data"), path_rule=True)
    reads = [str(tmp_path / "data" / "hello.txt"), "/etc/shadow", str(tmp_path / "secret.txt"),
             f"{tmp_path / 'data'}/../secret.txt"]  # fmt: skip
    seen = asyncio.run(asyncio.wait_for(fs_session(tmp_path, policy, reads), 180))

    assert "fs__read_text_file" in seen["tools"]
    assert "fs__write_file" not in seen["tools"]  # denied by policy: not even listed
    ok, shadow, secret, dotdot = seen["reads"]
    assert not ok.is_error, text(ok)
    assert CONTENT.strip() in text(ok)
    assert ok.meta["stockade/trust"] == "untrusted"
    for refused in (shadow, secret, dotdot):
        assert refused.is_error
        assert "path_under" in text(refused)
        assert SECRET not in text(refused)
    assert seen["write"].is_error


@pytest.mark.guarantee("gw-fs-peer-contained")
def test_without_the_path_rule_the_sandbox_still_holds_no_host_file(
    tmp_path: Path, filesystem_js: Path
) -> None:
    setup(tmp_path)
    # the server itself may read anything under / and no argument rule guards the path: only the
    # sandbox stands between it and the host's files
    policy = write_policy(tmp_path, filesystem_js, allowed="/", path_rule=False)
    reads = [str(tmp_path / "data" / "hello.txt"), str(tmp_path / "secret.txt"), "/etc/shadow"]
    # the operator approves every read, so each call reaches the server in its sandbox
    approve = ("--auto-approve", "fs__read_text_file")
    seen = asyncio.run(asyncio.wait_for(fs_session(tmp_path, policy, reads, *approve), 180))
    ok, secret, shadow = seen["reads"]
    assert CONTENT.strip() in text(ok)
    for r in (secret, shadow):  # answered by the server itself, not refused by the gateway
        assert r.meta.get("stockade/decision") != "deny", text(r)
    assert secret.is_error  # the host file is not there: the sandbox mounts only pkg/ and data/
    assert "ENOENT" in text(secret)  # the server's own answer from inside the sandbox
    assert "ENOENT" in text(shadow)  # no /etc/shadow at all in the sandbox's root
    assert SECRET not in text(secret)
    host_shadow = Path("/etc/shadow").read_text() if Path("/etc/shadow").exists() else ""
    root_line = next((ln for ln in host_shadow.splitlines() if ln.startswith("root:")), None)
    if root_line is not None:
        assert root_line not in text(shadow)
    assert seen["write"].is_error
