"""Each interceptor on its own, and the chain composed in the gateway's order."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from stockade.gateway import (
    ApprovalStep,
    ArgumentValidation,
    AuditStep,
    Authenticate,
    CallContext,
    ContextKey,
    FlowRule,
    Interceptor,
    OutputHandling,
    PinCheck,
    PolicyStep,
    RateLimit,
    SinkRule,
    TaintTracker,
    ToolResult,
    compose,
    redact,
)
from stockade.models import Category, Decision, ToolCall
from stockade.testing import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

CRED = "host-credential-0123456789"
ECHO = {
    "name": "echo",
    "inputSchema": {
        "type": "object",
        "properties": {"message": {"type": "string", "maxLength": 10}},
        "required": ["message"],
        "additionalProperties": False,
    },
}


class Terminal:
    def __init__(self, result: ToolResult | None = None) -> None:
        self.calls: list[CallContext] = []
        self.result = result or {"content": [{"type": "text", "text": "ok"}]}

    async def __call__(self, ctx: CallContext) -> ToolResult:
        self.calls.append(ctx)
        return self.result


def ctx_for(
    tool: str = "echo", args: dict[str, Any] | None = None, client: str = "alice", conv: str = "c1"
) -> CallContext:
    call = ToolCall(
        server="s",
        tool=tool,
        arguments=args if args is not None else {"message": "hi"},
        client=client,
        session=conv,
    )
    return CallContext(call=call, exposed_name=f"s__{tool}")


def run(icps: list[Interceptor], ctx: CallContext, terminal: Terminal | None = None) -> ToolResult:
    return asyncio.run(compose(icps, terminal or Terminal())(ctx))


def denied_at(result: ToolResult) -> str | None:
    if result.get("isError") and result.get("_meta", {}).get("stockade/decision") == "deny":
        return str(result["_meta"]["stockade/stage"])
    return None


@pytest.mark.guarantee("gw-denial-is-tool-error")
def test_an_unauthenticated_client_is_denied_with_a_tool_error() -> None:
    term = Terminal()
    out = run([Authenticate(frozenset({"alice"}))], ctx_for(client="mallory"), term)
    assert denied_at(out) == "authenticate"
    assert "mallory" in out["content"][0]["text"]
    assert term.calls == []


def test_rate_limit_denies_beyond_the_burst_and_refills_with_time() -> None:
    clock = FakeClock()
    rl = RateLimit(per_minute=60, burst=2, clock=clock)
    assert [denied_at(run([rl], ctx_for())) for _ in range(3)] == [None, None, "rate-limit"]
    clock.advance(1.0)
    assert denied_at(run([rl], ctx_for())) is None
    assert denied_at(run([rl], ctx_for(client="bob"))) is None


@pytest.mark.guarantee("gw-pin-hidden-until-approved")
def test_a_tool_without_a_current_pin_is_denied_at_pinning() -> None:
    pins = PinCheck(lambda s, t: ECHO if t == "echo" else None)
    assert denied_at(run([pins], ctx_for("other"))) == "pinning"
    ctx = ctx_for()
    assert denied_at(run([pins], ctx)) is None
    assert ctx.definition == ECHO


def test_policy_denial_stops_the_chain_and_records_the_decision() -> None:
    taint = TaintTracker(None)
    ctx = ctx_for()
    term = Terminal()
    out = run([PolicyStep(StaticDecider(), taint)], ctx, term)
    assert denied_at(out) == "policy"
    assert ctx.decision is not None
    assert ctx.decision.rule == "static.default"
    assert term.calls == []


@pytest.mark.guarantee("gw-args-validated")
@pytest.mark.parametrize(
    ("args", "ok"),
    [
        ({"message": "hi"}, True),
        ({}, False),
        ({"message": 5}, False),
        ({"message": "x" * 11}, False),
        ({"message": "hi", "extra": 1}, False),
    ],
)
def test_arguments_must_match_the_pinned_schema(args: dict[str, Any], ok: bool) -> None:
    ctx = ctx_for(args=args)
    ctx.definition = ECHO
    assert (denied_at(run([ArgumentValidation()], ctx)) is None) is ok


@pytest.mark.guarantee("gw-args-validated")
@pytest.mark.parametrize(
    "definition",
    [
        {"name": "echo"},
        {"name": "echo", "inputSchema": {"type": "nonsense"}},
        {"name": "echo", "inputSchema": {"$ref": "https://example.invalid/schema.json"}},
    ],
)
def test_a_missing_or_unusable_schema_denies(definition: dict[str, Any]) -> None:
    ctx = ctx_for()
    ctx.definition = definition
    assert denied_at(run([ArgumentValidation()], ctx)) == "arguments"


SINK = {
    ("s", "send"): SinkRule(
        server="s", tool="send", sensitive=("to",), when_tainted="require_approval"
    )
}


@pytest.mark.guarantee("gw-flow-sink")
def test_a_tainted_context_cannot_send_to_an_untrusted_recipient_without_approval() -> None:
    taint = TaintTracker(CRED)
    ctx = ctx_for("send", {"to": "attacker@evil.example"})
    out = run([FlowRule(SINK, taint)], ctx)
    assert denied_at(out) is None  # passes on, but now needs approval
    assert ctx.decision is not None
    assert ctx.decision.kind == "require_approval"
    assert ctx.decision.category == Category.EXFILTRATION
    assert "flow: to not from trusted context" in ctx.provenance


@pytest.mark.guarantee("gw-flow-sink")
def test_a_recipient_from_the_trusted_instruction_is_allowed_when_tainted() -> None:
    taint = TaintTracker(CRED)
    key = ContextKey(client="alice", conversation="c1")
    taint.register(key, "please mail the report to bob@example.com", CRED)
    taint.mark_tainted(key, "web__fetch")
    ctx = ctx_for("send", {"to": "bob@example.com"})
    run([FlowRule(SINK, taint)], ctx)
    assert ctx.decision is None
    assert "flow: to from trusted instruction" in ctx.provenance


@pytest.mark.guarantee("gw-flow-sink")
def test_a_deny_sink_rule_denies_in_a_tainted_context_and_allows_in_a_clean_one() -> None:
    taint = TaintTracker(CRED)
    rule = {
        ("s", "send"): SinkRule(server="s", tool="send", sensitive=("to",), when_tainted="deny")
    }
    assert (
        denied_at(run([FlowRule(rule, taint)], ctx_for("send", {"to": "x@y"})))
        == "information-flow"
    )
    taint.register(ContextKey(client="alice", conversation="c1"), "hello", CRED)
    assert denied_at(run([FlowRule(rule, taint)], ctx_for("send", {"to": "x@y"}))) is None


def approval_ctx() -> CallContext:
    ctx = ctx_for()
    ctx.decision = Decision.require_approval("needs a human", Category.FINANCIAL)
    return ctx


def test_approval_allows_or_denies_as_the_approver_says() -> None:
    yes, no = ScriptedApprover(allow=True), ScriptedApprover(allow=False)
    assert denied_at(run([ApprovalStep(yes, 5)], approval_ctx())) is None
    assert denied_at(run([ApprovalStep(no, 5)], approval_ctx())) == "approval"
    assert len(no.asked) == 1


@pytest.mark.guarantee("gw-approval-timeout-denies")
def test_an_approver_that_never_answers_means_deny() -> None:
    release = threading.Event()

    class Stuck:
        def decide(self, call: ToolCall, decision: Decision) -> Decision:
            release.wait(10)
            return Decision.allow()

    async def go() -> ToolResult:
        try:
            return await compose([ApprovalStep(Stuck(), 0.05)], Terminal())(approval_ctx())
        finally:
            release.set()

    out = asyncio.run(go())
    assert denied_at(out) == "approval"
    assert "no approval within" in out["content"][0]["text"]


@pytest.mark.guarantee("gw-results-untrusted")
@pytest.mark.guarantee("gw-taint-unregistered")
def test_output_handling_tags_the_result_and_taints_the_context() -> None:
    taint = TaintTracker(CRED)
    key = ContextKey(client="alice", conversation="c1")
    taint.register(key, "x", CRED)
    out = run(
        [OutputHandling(taint)],
        ctx_for(),
        Terminal({"content": [{"type": "text", "text": "\x1b[2Jhi"}]}),
    )
    assert out["_meta"]["stockade/trust"] == "untrusted"
    assert "\x1b" not in out["content"][0]["text"]
    assert taint.is_tainted(key)


@pytest.mark.guarantee("gw-audit-every-call")
def test_audit_records_denials_and_successes_with_redacted_arguments() -> None:
    sink = MemoryAuditSink()
    chain: list[Interceptor] = [AuditStep(sink), Authenticate(frozenset({"alice"}))]
    # pragma: allowlist nextline secret
    run(chain, ctx_for(args={"message": "hi", "api_key": "sk-abcdefghijklmnopqrstuvwxyz"}))
    run(chain, ctx_for(client="mallory"))
    first, second = sink.of_type("gateway.call")
    assert first.data["outcome"] == "ok"
    assert first.data["arguments"]["api_key"] == "[redacted]"
    assert second.data["outcome"] == "denied:authenticate"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"password": "x"}, {"password": "[redacted]"}),
        ({"note": "token ghp_abcdefghijklmnopqrstuvwxyz0123"}, {"note": "token [redacted]"}),
        # pragma: allowlist nextline secret
        ({"n": 5, "l": ["AKIAABCDEFGHIJKLMNOP"]}, {"n": 5, "l": ["[redacted]"]}),
    ],
)
def test_redaction_removes_secret_keys_and_values(value: Any, expected: Any) -> None:
    assert redact(value) == expected


def test_the_full_chain_allows_a_good_call_in_order() -> None:
    taint = TaintTracker(None)
    sink = MemoryAuditSink()
    term = Terminal()
    chain: list[Interceptor] = [
        AuditStep(sink),
        Authenticate(frozenset({"alice"})),
        RateLimit(60, 5, FakeClock()),
        PinCheck(lambda s, t: ECHO),
        PolicyStep(StaticDecider(allow={"s__echo"}), taint),
        ArgumentValidation(),
        FlowRule(SINK, taint),
        ApprovalStep(ScriptedApprover(allow=False), 5),
        OutputHandling(taint),
    ]
    out = run(chain, ctx_for(), term)
    assert not out["isError"]
    assert len(term.calls) == 1
    assert sink.of_type("gateway.call")[0].data["decision"]["kind"] == "allow"


@pytest.mark.guarantee("gw-approval-timeout-denies")
def test_a_failing_approver_means_deny_and_category_timeouts_apply() -> None:
    from stockade.errors import ApprovalError

    class Broken:
        def decide(self, call: ToolCall, decision: Decision) -> Decision:
            raise ApprovalError("channel down", "restart it")

    out = run([ApprovalStep(Broken(), 5)], approval_ctx())
    assert denied_at(out) == "approval"
    assert "channel down" in out["content"][0]["text"]
    seen: list[Category] = []

    def timeout_for(c: Category) -> float:
        seen.append(c)
        return 5.0

    assert (
        denied_at(run([ApprovalStep(ScriptedApprover(allow=True), 1, timeout_for)], approval_ctx()))
        is None
    )
    assert seen == [Category.FINANCIAL]
