"""Docker MCP Gateway exec interceptor: the before/after stdin-stdout contract, fail closed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stockade.approvals import after, before
from stockade.models import Category, Decision, ToolCall
from stockade.testing import ScriptedApprover

POLICY = """
version: 1
default: deny
servers:
  - name: tools
    command: [/bin/true]
    tools:
      rules:
        - {tool: read_file, action: allow, tier: low}
        - {tool: send_email, action: approve, category: exfiltration}
"""


def msg(name: str, **arguments: object) -> bytes:
    return json.dumps(
        {"method": "tools/call", "params": {"name": name, "arguments": arguments}}
    ).encode()


def decider(call: ToolCall) -> Decision:
    if call.tool == "read_file":
        return Decision.allow()
    if call.tool == "send_email":
        return Decision.require_approval("sink", Category.EXFILTRATION)
    return Decision.deny("not allowed")


def run_before(payload: bytes, approver: ScriptedApprover | None = None) -> tuple[bytes, Decision]:
    return before(payload, server="tools", client="docker", decide=decider, approver=approver)


@pytest.mark.guarantee("apr-intercept-fail-closed")
def test_only_an_allow_lets_the_call_proceed_with_empty_output() -> None:
    out, d = run_before(msg("read_file", path="data/x"))
    assert (out, d.kind) == (b"", "allow")
    out, _ = run_before(msg("rm", path="/"))
    assert json.loads(out)["isError"] is True
    assert b"not allowed" in out


@pytest.mark.guarantee("apr-intercept-fail-closed")
@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"[]",
        b'{"method":"tools/list"}',
        b'{"method":"tools/call","params":{}}',
        b'{"method":"tools/call","params":{"name":"read_file","arguments":[1]}}',
        b"{" * 5_000_000,
    ],
)
def test_malformed_input_never_proceeds(payload: bytes) -> None:
    out, d = run_before(payload)
    assert d.kind == "deny"
    assert json.loads(out)["isError"] is True


def test_an_approval_goes_to_the_approver() -> None:
    out, d = run_before(msg("send_email", to="a@b"), ScriptedApprover(allow=True))
    assert (out, d.kind) == (b"", "allow")
    out, d = run_before(msg("send_email", to="a@b"), ScriptedApprover(allow=False))
    assert d.kind == "deny"
    assert json.loads(out)["isError"] is True
    out, d = run_before(msg("send_email", to="a@b"), None)
    assert "no approver" in d.reason


def test_after_neutralises_text_and_marks_the_result_untrusted() -> None:
    result = {"content": [{"type": "text", "text": "hi\x1b]0;pwned\x07\u202e"}], "isError": False}
    out = json.loads(after(json.dumps(result).encode()))
    assert "\x1b" not in out["content"][0]["text"]
    assert "\u202e" not in out["content"][0]["text"]
    assert out["_meta"]["stockade/trust"] == "untrusted"
    assert json.loads(after(b"garbage"))["isError"] is True


@pytest.mark.guarantee("apr-intercept-fail-closed")
def test_the_command_follows_the_exec_contract_under_bin_sh(tmp_path: Path) -> None:
    """Run exactly as Docker's gateway does: /bin/sh -c COMMAND, payload on stdin."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    exe = Path(sys.executable).parent / "stockade"
    cmd = (
        f"STOCKADE_HOME={tmp_path / 'home'} {exe} intercept before --policy {policy} "
        f"--server tools --approver none --store {tmp_path / 'runs.db'}"
    )

    def sh(payload: bytes) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["/bin/sh", "-c", cmd], input=payload, capture_output=True, timeout=60, check=False
        )

    ok = sh(msg("read_file", path="x"))
    assert (ok.returncode, ok.stdout.strip()) == (0, b"")
    for payload in (msg("send_email", to="attacker@evil.example"), b"junk"):
        res = sh(payload)
        assert res.returncode == 0
        assert json.loads(res.stdout)["isError"] is True
    broken = subprocess.run(
        ["/bin/sh", "-c", cmd.replace(str(policy), str(tmp_path / "missing.yaml"))],
        input=msg("read_file", path="x"),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert json.loads(broken.stdout)["isError"] is True
