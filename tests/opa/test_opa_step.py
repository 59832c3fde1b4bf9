"""The gateway's OPA step: built-in first, then Rego, which may only tighten; fails closed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stockade.gateway import DecisionContext, EngineDecider
from stockade.gateway._opa_step import OpaDecider, opa_decider_for
from stockade.models import ToolCall
from stockade.opa import OpaDelegate
from stockade.policy import load_policy
from stockade.testing import FakeClock, MemoryAuditSink

from ._fakes import Recorder, unreachable

REGO = """\
package stockade.tool_call

default decision := {"result": "allow"}

decision := {"result": "deny", "reason": "mallory may not use echo"} if {
    input.client == "mallory"
    input.tool == "echo"
}
"""

POLICY = """\
version: 1
default: deny
servers:
  - name: mail
    command: ["/usr/bin/python3", "srv/server.py"]
    tools:
      rules:
        - tool: echo
          action: allow
          tier: low
        - tool: send_email
          action: allow
          tier: high
          category: exfiltration
        - tool: wipe
          action: deny
opa:
  mode: regopy
  modules: [rego/authz.rego]
"""

CLEAN = DecisionContext(tainted=False, exposed_name="mail__echo")


def _policy(tmp_path: Path, text: str = POLICY, rego: str = REGO) -> Any:
    (tmp_path / "rego").mkdir(exist_ok=True)
    (tmp_path / "rego" / "authz.rego").write_text(rego)
    (tmp_path / "srv").mkdir(exist_ok=True)
    (tmp_path / "srv" / "server.py").write_text("")
    (tmp_path / "policy.yaml").write_text(text)
    return load_policy(tmp_path / "policy.yaml")


def _decider(tmp_path: Path, **kw: Any) -> Any:
    policy = _policy(tmp_path)
    return opa_decider_for(policy, EngineDecider(policy, FakeClock()), **kw)


def test_rego_denies_one_tool_for_one_client_only(tmp_path: Path) -> None:
    d = _decider(tmp_path)
    denied = d(ToolCall(server="mail", tool="echo", client="mallory"), CLEAN)
    assert denied.kind == "deny"
    assert denied.reason == "mallory may not use echo"
    assert denied.rule == "opa:stockade.tool_call.decision"
    assert d(ToolCall(server="mail", tool="echo", client="alice"), CLEAN).kind == "allow"


@pytest.mark.guarantee("cp-opa-gateway-tighten-only")
def test_an_opa_allow_never_widens_a_built_in_deny(tmp_path: Path) -> None:
    d = _decider(tmp_path)
    decision = d(ToolCall(server="mail", tool="wipe", client="alice"), CLEAN)
    assert decision.kind == "deny"
    assert not decision.rule.startswith("opa:")


@pytest.mark.guarantee("cp-opa-gateway-tighten-only")
def test_an_opa_allow_keeps_the_built_in_approval(tmp_path: Path) -> None:
    d = _decider(tmp_path)
    decision = d(ToolCall(server="mail", tool="send_email", client="alice"), CLEAN)
    assert decision.kind == "require_approval"


def test_the_input_document_is_the_documented_one(tmp_path: Path) -> None:
    policy = _policy(tmp_path)
    recorder = Recorder()
    d = opa_decider_for(
        policy,
        EngineDecider(policy, FakeClock()),
        evaluator=recorder,
        digests={"mail": "sha256:" + "a" * 64},
    )
    call = ToolCall(
        server="mail", tool="send_email", client="bob", session="s1", arguments={"to": "x"}
    )
    d(call, DecisionContext(tainted=True, exposed_name="mail__send_email"))
    assert recorder.seen == [
        {
            "version": 1,
            "question": "tool_call",
            "client": "bob",
            "server": "mail",
            "tool": "send_email",
            "arguments": {"to": "x"},
            "image_digest": "sha256:" + "a" * 64,
            "categories": ["exfiltration"],
            "tainted": True,
            "provenance": [],
            "session": "s1",
            "policy_hash": policy.effective_hash,
            "extra": {},
        }
    ]


@pytest.mark.guarantee("cp-opa-fail-closed")
def test_an_unreachable_opa_server_denies_with_the_reason(tmp_path: Path) -> None:
    policy = _policy(tmp_path)

    d = opa_decider_for(policy, EngineDecider(policy, FakeClock()), evaluator=unreachable())
    decision = d(ToolCall(server="mail", tool="echo", client="alice"), CLEAN)
    assert decision.kind == "deny"
    assert "OPA could not decide" in decision.reason
    assert "unreachable" in decision.reason


@pytest.mark.parametrize(
    "rego",
    [
        "package stockade.tool_call\n\nx := 1\n",  # undefined decision
        'package stockade.tool_call\n\ndecision := {"result": "maybe"}\n',
        'package stockade.tool_call\n\ndecision := {"result": "deny"}\n',  # no reason
        'package stockade.tool_call\n\ndecision := "allow"\n',
    ],
)
@pytest.mark.guarantee("cp-opa-fail-closed")
def test_undefined_or_malformed_answers_deny(tmp_path: Path, rego: str) -> None:
    policy = _policy(tmp_path, rego=rego)
    d = opa_decider_for(policy, EngineDecider(policy, FakeClock()))
    assert d(ToolCall(server="mail", tool="echo", client="alice"), CLEAN).kind == "deny"


def test_each_opa_answer_is_audited_but_probes_are_not(tmp_path: Path) -> None:
    sink = MemoryAuditSink()
    d = _decider(tmp_path, audit=sink)
    d(ToolCall(server="mail", tool="echo", client="mallory"), CLEAN)
    assert d.listable("mallory", "mail", "echo") is False
    assert d.listable("alice", "mail", "echo") is True
    events = [e for e in sink.events if e.type == "opa_decision"]
    assert len(events) == 1
    assert events[0].data["result"] == "deny"
    assert events[0].data["reason"] == "mallory may not use echo"


def test_without_delegation_or_with_opa_turned_off_the_built_in_engine_decides(
    tmp_path: Path,
) -> None:
    for text in (
        POLICY.replace("opa:\n  mode: regopy", "opa:\n  enabled: false\n  mode: regopy"),
        POLICY.replace("opa:\n  mode: regopy", "opa:\n  delegate: [task]\n  mode: regopy"),
        POLICY[: POLICY.index("opa:")],
    ):
        policy = _policy(tmp_path, text)
        inner = EngineDecider(policy, FakeClock())
        assert opa_decider_for(policy, inner) is inner


def test_the_decider_is_an_opa_decider_when_delegated(tmp_path: Path) -> None:
    assert isinstance(_decider(tmp_path), OpaDecider)
    assert isinstance(_decider(tmp_path)._delegate, OpaDelegate)
