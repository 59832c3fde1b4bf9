"""OPA's delegation and data_access in the gateway, in real Rego (regopy in process).

``data_access`` is asked at the information-flow step when the call's context carries output of a
server other than the one called; ``delegation`` when the host application registers a trusted
context. Both only when delegated, both fail closed, both only tighten.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.gateway import Gateway, GatewayConfig, PinStore, SubprocessLauncher
from stockade.gateway import _taint as taint_module
from stockade.gateway._chain import CallContext, ToolResult, compose
from stockade.gateway._interceptors import (
    ApprovalStep,
    FlowRule,
    OutputHandling,
    PolicyStep,
    SinkRule,
)
from stockade.gateway._opa_step import DataAccessQuestion
from stockade.gateway._taint import ContextKey, TaintTracker
from stockade.models import Category, ToolCall
from stockade.opa import OpaDelegate, Questions, RegoEvaluator
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

from ._fakes import Recorder, erroring, unreachable

CRED = "host-credential-0123456789"

REGO = """\
package stockade
import rego.v1

data_access.decision := {
    "result": "deny",
    "reason": sprintf("web data may not reach %s", [input.server]),
} if {
    "web" in input.extra.from_servers
    input.server == "mail"
} else := {
    "result": "require_approval",
    "reason": "notes from another server",
    "category": "exfiltration",
} if {
    input.server == "notes"
} else := {"result": "allow", "reason": "no cross-namespace rule"}

delegation.decision := {"result": "allow", "reason": "alice may act for the user"} if {
    input.client == "alice"
    input.extra.instruction_length <= 200
} else := {
    "result": "deny",
    "reason": sprintf("%s may not receive the user's authority", [input.extra.delegate_to]),
}
"""

ALLOW = {"web__fetch", "mail__send", "notes__add", "files__put"}


def _rego(
    delegated: tuple[str, ...] = ("data_access", "delegation"), audit: Any = None
) -> Questions:
    return Questions(OpaDelegate(RegoEvaluator({"authz.rego": REGO})), delegated, audit=audit)


class Flow:
    """The call chain from policy to output around a terminal that records what reached it."""

    def __init__(
        self,
        questions: Questions | None,
        *,
        approval: set[str] | None = None,
        approver_allows: bool = False,
        when_tainted: str = "require_approval",
    ) -> None:
        self.taint = TaintTracker(CRED)
        self.approver = ScriptedApprover(allow=approver_allows)
        self.reached: list[str] = []
        sink = SinkRule(server="mail", tool="send", sensitive=("to", "body"))
        sink = sink.model_copy(update={"when_tainted": when_tainted})
        cross = None if questions is None else DataAccessQuestion(questions)
        self.chain = compose(
            [
                PolicyStep(
                    StaticDecider(allow=ALLOW - (approval or set()), approval=approval), self.taint
                ),
                FlowRule({("mail", "send"): sink}, self.taint, cross),
                ApprovalStep(self.approver, 5),
                OutputHandling(self.taint),
            ],
            self._terminal,
        )

    async def _terminal(self, ctx: CallContext) -> ToolResult:
        self.reached.append(ctx.exposed_name)
        return {"content": [{"type": "text", "text": "done"}]}

    def register(self, conversation: str, instruction: str) -> None:
        assert self.taint.register(
            ContextKey(client="alice", conversation=conversation), instruction, CRED
        )

    def call(self, name: str, args: dict[str, Any] | None = None, conv: str = "c1") -> ToolResult:
        server, tool = name.split("__")
        call = ToolCall(
            server=server, tool=tool, client="alice", session=conv, arguments=args or {}
        )
        ctx = CallContext(call=call, exposed_name=name)
        result = asyncio.run(asyncio.wait_for(self.chain(ctx), 10))
        return result


def _stage(result: ToolResult) -> str | None:
    meta = result.get("_meta") or {}
    return meta.get("stockade/stage") if result.get("isError") else None


def _text(result: ToolResult) -> str:
    return str(result["content"][0]["text"])


def _asked(sink: MemoryAuditSink, question: str) -> list[dict[str, Any]]:
    return [e.data for e in sink.of_type("opa_decision") if e.data.get("question") == question]


# -- data_access ------------------------------------------------------------------------------


@pytest.mark.guarantee("cp-opa-data-access")
def test_a_call_after_another_servers_output_is_denied_by_rego_with_its_reason() -> None:
    sink = MemoryAuditSink()
    flow = Flow(_rego(audit=sink))
    flow.register("c1", "mail bob@example.org the summary")
    assert _stage(flow.call("web__fetch", {"url": "https://example.org"})) is None
    out = flow.call("mail__send", {"to": "bob@example.org", "body": "x"})
    assert _stage(out) == "data-access"
    assert "web data may not reach mail" in _text(out)
    assert flow.reached == ["web__fetch"]  # the mail server never got the call
    (event,) = _asked(sink, "data_access")
    assert event == {
        "question": "data_access",
        "client": "alice",
        "server": "mail",
        "tool": "send",
        "result": "deny",
        "reason": "web data may not reach mail",
        "rule": "opa:stockade.data_access.decision",
        "from_servers": ["web"],
    }


@pytest.mark.guarantee("cp-opa-data-access")
def test_rego_allowing_the_flow_lets_the_call_through() -> None:
    sink = MemoryAuditSink()
    flow = Flow(_rego(audit=sink))
    flow.call("web__fetch")
    assert _stage(flow.call("files__put", {"path": "a"})) is None
    assert flow.reached == ["web__fetch", "files__put"]
    assert [e["result"] for e in _asked(sink, "data_access")] == ["allow"]


@pytest.mark.guarantee("cp-opa-data-access")
def test_a_clean_context_or_the_servers_own_output_is_not_asked() -> None:
    sink = MemoryAuditSink()
    flow = Flow(_rego(audit=sink))
    flow.register("c1", "mail bob@example.org the summary")
    assert _stage(flow.call("mail__send", {"to": "bob@example.org"})) is None  # clean
    assert _stage(flow.call("mail__send", {"to": "bob@example.org"})) is None  # mail's own output
    assert _stage(flow.call("files__put", conv="fresh")) is None  # unregistered, nothing read
    assert _asked(sink, "data_access") == []


@pytest.mark.guarantee("cp-opa-data-access")
def test_conversations_do_not_share_provenance() -> None:
    sink = MemoryAuditSink()
    flow = Flow(_rego(audit=sink))
    flow.call("web__fetch", conv="c1")
    assert _stage(flow.call("mail__send", {"to": "x"}, conv="c2")) == "approval"  # built-in flow
    assert _asked(sink, "data_access") == []


@pytest.mark.guarantee("cp-opa-data-access")
@pytest.mark.parametrize("approver_allows", [False, True])
def test_rego_require_approval_sends_the_call_to_the_approver(approver_allows: bool) -> None:
    flow = Flow(_rego(), approver_allows=approver_allows)
    flow.call("web__fetch")
    out = flow.call("notes__add", {"text": "x"})
    ((_, asked),) = flow.approver.asked
    assert (asked.kind, asked.rule) == ("require_approval", "opa:stockade.data_access.decision")
    assert asked.category is Category.EXFILTRATION
    assert (_stage(out) is None) is approver_allows
    assert ("notes__add" in flow.reached) is approver_allows


@pytest.mark.guarantee("cp-opa-gateway-tighten-only")
def test_a_rego_allow_never_turns_a_built_in_approval_or_deny_into_an_allow() -> None:
    sink = MemoryAuditSink()
    flow = Flow(_rego(audit=sink), approval={"files__put"})
    flow.call("web__fetch")
    assert _stage(flow.call("files__put", {"path": "a"})) == "approval"  # built-in approval kept
    assert [e["result"] for e in _asked(sink, "data_access")] == ["allow"]
    assert _stage(flow.call("web__other")) == "policy"  # a built-in deny: OPA is not asked
    denying = Flow(_rego(audit=sink), when_tainted="deny")
    denying.call("web__fetch")
    assert _stage(denying.call("mail__send", {"to": "evil@example.org"})) == "information-flow"
    assert len(_asked(sink, "data_access")) == 1


@pytest.mark.guarantee("cp-opa-questions-fail-closed")
@pytest.mark.parametrize("evaluator", [unreachable, erroring])
def test_data_access_denies_when_opa_isunreachable_orerroring(evaluator: Any) -> None:
    flow = Flow(Questions(OpaDelegate(evaluator()), ("data_access",)))
    flow.call("web__fetch")
    out = flow.call("files__put", {"path": "a"})
    assert _stage(out) == "data-access"
    assert "OPA could not decide" in _text(out)


@pytest.mark.guarantee("cp-opa-not-delegated")
def test_data_access_not_delegated_is_never_asked() -> None:
    flow = Flow(Questions(OpaDelegate(unreachable()), ("tool_call", "delegation")))
    flow.call("web__fetch")
    assert _stage(flow.call("files__put", {"path": "a"})) is None
    gw = _gateway(Questions(OpaDelegate(unreachable()), ("delegation",)))
    assert gw._data_access() is None


def test_the_data_access_input_names_sources_and_sensitive_arguments_never_values() -> None:
    recorder = Recorder()
    seen = recorder.seen
    flow = Flow(Questions(OpaDelegate(recorder), ("data_access",)))
    flow.register("c1", "mail bob@example.org the summary")
    flow.call("web__fetch")
    flow.call("notes__add")
    flow.call("mail__send", {"to": "bob@example.org", "body": "secret plans"})
    assert seen[-1] == {
        "version": 1,
        "question": "data_access",
        "client": "alice",
        "server": "mail",
        "tool": "send",
        "arguments": {},
        "image_digest": None,
        "categories": [],
        "tainted": True,
        "provenance": ["web", "notes"],
        "session": "c1",
        "policy_hash": "",
        "extra": {
            "from_servers": ["web", "notes"],
            "provenance_complete": True,
            "sensitive_arguments": [
                {"name": "to", "trusted": True},
                {"name": "body", "trusted": False},
            ],
        },
    }
    assert "secret plans" not in json.dumps(seen)


@pytest.mark.guarantee("cp-opa-data-access")
def test_a_forgotten_unregistered_context_is_asked_with_incomplete_provenance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(taint_module, "MAX_UNREGISTERED", 2)
    taint = TaintTracker(CRED)
    registered = ContextKey(client="alice", conversation="reg")
    assert taint.register(registered, "x", CRED)
    taint.mark_tainted(registered, "web__fetch", server="web")
    for n in range(4):  # the agent floods unregistered conversations
        taint.mark_tainted(ContextKey(client="alice", conversation=f"u{n}"), "a__b", server="a")
    assert taint.sources(ContextKey(client="alice", conversation="u0")) == ((), False)
    assert taint.sources(ContextKey(client="alice", conversation="u3")) == (("a",), True)
    assert taint.sources(registered) == (("web",), True)  # registered contexts are never forgotten
    recorder = Recorder({"result": "deny", "reason": "provenance unknown"})
    asker = Questions(OpaDelegate(recorder), ("data_access",))
    check = FlowRule({}, taint, DataAccessQuestion(asker))
    ctx = CallContext(
        call=ToolCall(server="files", tool="put", client="alice", session="u0"),
        exposed_name="files__put",
    )

    async def nxt(_: CallContext) -> ToolResult:
        return {"content": []}

    out = asyncio.run(check(ctx, nxt))
    assert _stage(out) == "data-access"
    assert [doc["extra"] for doc in recorder.seen] == [
        {"from_servers": [], "provenance_complete": False, "sensitive_arguments": []}
    ]


# -- delegation -------------------------------------------------------------------------------


def _gateway(questions: Questions | None, audit: MemoryAuditSink | None = None) -> Gateway:
    return Gateway(
        GatewayConfig(servers=(), clients=("alice", "bob")),
        pins=PinStore(Path("/nonexistent-pins")),
        launcher=SubprocessLauncher(),
        decider=StaticDecider(),
        approver=ScriptedApprover(allow=False),
        audit=audit or MemoryAuditSink(),
        clock=FakeClock(),
        host_credential=CRED,
        opa=questions,
    )


def _register(gw: Gateway, client: str, instruction: str = "summarise my mail") -> dict[str, Any]:
    args = {"conversation": "c1", "instruction": instruction, "credential": CRED}
    msg = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "stockade__register_context", "arguments": args},
    }
    resp = asyncio.run(asyncio.wait_for(gw.handle(msg, client=client), 10))
    assert resp is not None
    return dict(resp["result"])


def _clean(gw: Gateway, client: str) -> bool:
    return not gw.taint.is_tainted(ContextKey(client=client, conversation="c1"))


@pytest.mark.guarantee("cp-opa-delegation")
def test_rego_refusing_delegation_refuses_the_registration_with_its_reason() -> None:
    sink = MemoryAuditSink()
    gw = _gateway(_rego(audit=sink), sink)
    refused = _register(gw, "bob")
    assert refused["isError"] is True
    assert "bob may not receive the user's authority" in _text(refused)
    assert not _clean(gw, "bob")  # the conversation stays unregistered, i.e. tainted
    assert not _register(gw, "alice")["isError"]
    assert _clean(gw, "alice")
    too_long = _register(gw, "alice", "x" * 201)
    assert too_long["isError"] is True
    events = _asked(sink, "delegation")
    assert [(e["client"], e["delegate_to"], e["result"]) for e in events] == [
        ("bob", "bob", "deny"),
        ("alice", "alice", "allow"),
        ("alice", "alice", "deny"),
    ]
    (reg,) = [e.data for e in sink.of_type("gateway.register_context") if e.data["client"] == "bob"]
    assert reg["ok"] is False
    assert reg["opa"]["reason"] == "bob may not receive the user's authority"


def test_the_delegation_input_carries_a_digest_of_the_instruction_never_its_text() -> None:
    recorder = Recorder()
    gw = _gateway(Questions(OpaDelegate(recorder), ("delegation",)))
    assert not _register(gw, "alice", "pay the invoice to ACME")["isError"]
    (doc,) = recorder.seen
    assert (doc["question"], doc["client"], doc["session"]) == ("delegation", "alice", "c1")
    assert doc["extra"] == {
        "delegate_to": "alice",
        "conversation": "c1",
        "instruction_sha256": hashlib.sha256(b"pay the invoice to ACME").hexdigest(),
        "instruction_length": 23,
    }
    assert "invoice" not in json.dumps(doc)


@pytest.mark.guarantee("cp-opa-delegation")
@pytest.mark.guarantee("cp-opa-questions-fail-closed")
@pytest.mark.parametrize("evaluator", [unreachable, erroring])
def test_delegation_with_opaunreachable_orerroring_refuses_the_registration(
    evaluator: Any,
) -> None:
    gw = _gateway(Questions(OpaDelegate(evaluator()), ("delegation",)))
    out = _register(gw, "alice")
    assert out["isError"] is True
    assert "OPA could not decide" in _text(out)
    assert not _clean(gw, "alice")


@pytest.mark.guarantee("cp-opa-delegation")
def test_delegation_is_asked_only_after_the_host_credential_and_refusals_do_not_lock() -> None:
    sink = MemoryAuditSink()
    gw = _gateway(_rego(audit=sink), sink)
    args = {"conversation": "c1", "instruction": "x", "credential": "a-wrong-guess-0000000"}
    assert gw._register("alice", args)["isError"] is True
    assert _asked(sink, "delegation") == []  # no OPA question for a forged registration
    for _ in range(12):
        assert _register(gw, "bob")["isError"] is True
    assert gw._register_failures.get("bob", 0) == 0


@pytest.mark.guarantee("cp-opa-not-delegated")
def test_delegation_not_delegated_is_never_asked() -> None:
    gw = _gateway(Questions(OpaDelegate(unreachable()), ("data_access",)))
    assert not _register(gw, "bob")["isError"]
    assert _clean(gw, "bob")
    assert not _register(_gateway(None), "bob")["isError"]


# -- the algebra ------------------------------------------------------------------------------

ANSWERS = [
    {"result": "allow"},
    {"result": "deny", "reason": "no"},
    {"result": "require_approval", "reason": "ask", "category": "exfiltration"},
    {"result": "maybe"},
    {"result": "deny"},
    "allow",
    {"result": "allow", "unknown": 1},
]


@pytest.mark.guarantee("cp-opa-gateway-tighten-only")
@given(
    answer=st.sampled_from(ANSWERS),
    builtin=st.sampled_from(["allow", "approval", "deny"]),
    read=st.lists(st.sampled_from(["web", "notes", "files"]), max_size=3),
)
def test_data_access_never_lets_through_what_the_built_in_steps_stop(
    answer: object, builtin: str, read: list[str]
) -> None:
    """With an approver that refuses, a call reaches its server only when the built-in decision
    allows it and OPA (when asked at all) answers allow."""
    recorder = Recorder(answer)
    flow = Flow(
        Questions(OpaDelegate(recorder), ("data_access",)),
        approval={"files__put"} if builtin == "approval" else set(),
    )
    for server in read:
        flow.call(f"{server}__fetch" if server == "web" else f"{server}__add")
    flow.reached.clear()
    recorder.seen.clear()
    name = "files__put" if builtin != "deny" else "files__other"
    flow.call(name, {"path": "a"})
    asked = any(s != "files" for s in read)
    assert bool(recorder.seen) is (asked and builtin != "deny")
    opa_allows = not asked or answer == {"result": "allow"}
    assert (flow.reached == [name]) is (builtin == "allow" and opa_allows)


def test_the_taint_provenance_is_per_conversation_deduplicated_and_reset_by_registration() -> None:
    taint = TaintTracker(CRED)
    key = ContextKey(client="alice", conversation="c1")
    for server in ("web", "mail", "web"):
        taint.mark_tainted(key, f"{server}__x", server=server)
    assert taint.sources(key) == (("web", "mail"), True)
    assert taint.sources(ContextKey(client="bob", conversation="c1")) == ((), True)
    assert taint.register(key, "fresh start", CRED)
    assert taint.sources(key) == ((), True)
    assert not taint.is_tainted(key)
