"""The gateway's interceptors, one small class each (see :mod:`._chain`)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol, runtime_checkable

import jsonschema
from jsonschema.exceptions import SchemaError
from pydantic import Field
from referencing.exceptions import Unresolvable

from stockade.errors import StockadeError
from stockade.models import Approver, AuditSink, Category, Clock, Decision, Frozen, ToolCall

from ._canon import canonical_json
from ._chain import CallContext, Next, ToolResult, deny_result
from ._taint import ContextKey, TaintTracker
from ._trust import tag_result

__all__ = [
    "ApprovalStep",
    "ArgumentValidation",
    "AuditStep",
    "Authenticate",
    "CrossNamespace",
    "CrossNamespaceCheck",
    "DecisionContext",
    "FlowRule",
    "ListingDecider",
    "OutputHandling",
    "PinCheck",
    "PolicyDecider",
    "PolicyStep",
    "ProvenanceApprover",
    "RateLimit",
    "SinkRule",
    "redact",
]


class DecisionContext(Frozen):
    """What the policy decider may know besides the call itself."""

    tainted: bool
    exposed_name: str
    probe: bool = False
    annotations: dict[str, Any] = Field(default_factory=dict)


class PolicyDecider(Protocol):
    def __call__(self, call: ToolCall, context: DecisionContext) -> Decision: ...


@runtime_checkable
class ProvenanceApprover(Protocol):
    """An approver that records how the call came to be flagged (taint source, flow checks)."""

    def decide_traced(
        self, call: ToolCall, decision: Decision, provenance: tuple[str, ...]
    ) -> Decision: ...


@runtime_checkable
class ListingDecider(Protocol):
    """A decider that can say, without arguments, whether a tool may be listed at all."""

    def listable(self, client: str, server: str, tool: str) -> bool: ...


@dataclass
class Authenticate:
    """Only clients the gateway authenticated (by transport) may call; others are denied."""

    clients: frozenset[str]

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        if ctx.call.client not in self.clients:
            return deny_result(
                ctx, "authenticate", f"client {ctx.call.client!r} is not authenticated"
            )
        ctx.authenticated = True
        return await nxt(ctx)


class RateLimit:
    """Token bucket per (client, server, tool) with an injected clock."""

    def __init__(self, per_minute: int, burst: int, clock: Clock) -> None:
        if per_minute <= 0 or burst <= 0:
            raise ValueError("rate limits must be positive")
        self._rate = per_minute / 60.0
        self._burst = float(burst)
        self._clock = clock
        self._state: dict[tuple[str, str, str], tuple[float, datetime]] = {}

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        key = (ctx.call.client, ctx.call.server, ctx.call.tool)
        now = self._clock.now()
        tokens, last = self._state.get(key, (self._burst, now))
        elapsed = max((now - last).total_seconds(), 0.0)
        tokens = min(self._burst, tokens + elapsed * self._rate)
        if tokens < 1.0:
            self._state[key] = (tokens, now)
            return deny_result(ctx, "rate-limit", f"rate limit of {self._rate * 60:g}/min exceeded")
        self._state[key] = (tokens - 1.0, now)
        return await nxt(ctx)


@dataclass
class PinCheck:
    """The tool must currently be exposed (pinned and unchanged); binds its pinned definition."""

    lookup: Callable[[str, str], dict[str, Any] | None]

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        definition = self.lookup(ctx.call.server, ctx.call.tool)
        if definition is None:
            return deny_result(
                ctx,
                "pinning",
                "tool is unknown, not pinned, or its definition changed since approval",
            )
        ctx.definition = definition
        return await nxt(ctx)


@dataclass
class PolicyStep:
    decider: PolicyDecider
    taint: TaintTracker

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        key = ContextKey(client=ctx.call.client, conversation=ctx.call.session)
        annotations = (ctx.definition or {}).get("annotations")
        dctx = DecisionContext(
            tainted=self.taint.is_tainted(key),
            exposed_name=ctx.exposed_name,
            annotations=annotations if isinstance(annotations, dict) else {},
        )
        if dctx.tainted:
            ctx.provenance.append(f"taint: {self.taint.describe(key)}")
        decision = self.decider(ctx.call, dctx)
        ctx.decision = decision
        if decision.kind == "deny":
            return deny_result(ctx, "policy", decision.reason)
        return await nxt(ctx)


class ArgumentValidation:
    """Arguments must validate against the *pinned* input schema (remote refs never fetched).

    Checked validators are cached by the schema's canonical JSON (bounded), since checking a
    schema costs far more than validating a call against it.
    """

    def __init__(self, cache_size: int = 1024) -> None:
        self._cache: dict[bytes, Any] = {}
        self._size = cache_size

    def _validator(self, schema: dict[str, Any]) -> Any:
        key = canonical_json(schema)
        v = self._cache.get(key)
        if v is None:
            cls = jsonschema.validators.validator_for(
                schema, default=jsonschema.Draft202012Validator
            )
            cls.check_schema(schema)
            v = cls(schema)
            if len(self._cache) >= self._size:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = v
        return v

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        schema = (ctx.definition or {}).get("inputSchema")
        if not isinstance(schema, dict):
            return deny_result(ctx, "arguments", "the pinned definition has no input schema")
        try:
            validator = self._validator(schema)
            errors = sorted(validator.iter_errors(ctx.call.arguments), key=lambda e: list(e.path))
        except (SchemaError, Unresolvable, ValueError) as e:
            return deny_result(
                ctx, "arguments", f"the pinned input schema is unusable: {type(e).__name__}"
            )
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.absolute_path) or "(root)"
            return deny_result(ctx, "arguments", f"argument {where}: {first.message[:200]}")
        return await nxt(ctx)


class SinkRule(Frozen):
    """A sink tool and its sensitive arguments (``*``: every string argument).

    ``when_tainted`` says what a call gets in a tainted context when a sensitive value does not
    come from the trusted instruction.
    """

    server: str
    tool: str
    sensitive: tuple[str, ...]
    category: Category = Category.EXFILTRATION
    when_tainted: Literal["deny", "require_approval"] = "require_approval"


class CrossNamespace(Frozen):
    """Untrusted content of other servers in the context of a call (the ``data_access`` input).

    ``from_servers``: the servers (other than the one called) whose output entered the context;
    ``complete``: False when the gateway forgot this context's provenance (it may be longer);
    ``sensitive``: the sink rule's sensitive argument names present in the call, each with whether
    its value comes from the trusted instruction.
    """

    from_servers: tuple[str, ...]
    complete: bool = True
    tainted: bool = True
    sensitive: tuple[tuple[str, bool], ...] = ()


CrossNamespaceCheck = Callable[[ToolCall, CrossNamespace], Decision]


@dataclass
class FlowRule:
    """Information flow: in a tainted context, sensitive sink arguments must come from trust.

    A value counts as trusted when it appears verbatim in the instruction the host application
    registered for this conversation. The provenance that decided is recorded on the context.

    With ``cross`` (OPA's ``data_access``, when the policy delegates it), a call whose context
    carries output of servers other than the one called is put to it after the built-in check:
    its deny denies, its require_approval asks a human unless the call already needs approval,
    and its allow keeps what the built-in steps decided.
    """

    sinks: Mapping[tuple[str, str], SinkRule]
    taint: TaintTracker
    cross: CrossNamespaceCheck | None = None

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        key = ContextKey(client=ctx.call.client, conversation=ctx.call.session)
        rule = self.sinks.get((ctx.call.server, ctx.call.tool))
        checked: list[tuple[str, bool]] = []
        if rule is not None and not self.taint.is_tainted(key):
            ctx.provenance.append("flow: context clean")
        elif rule is not None:
            checked = self._trace_arguments(ctx, key, rule)
            untrusted = [name for name, trusted in checked if not trusted]
            if untrusted:
                reason = (
                    f"{self.taint.describe(key)}; sensitive argument(s) {', '.join(untrusted)} "
                    "do not come from the user's trusted instruction"
                )
                if rule.when_tainted == "deny":
                    return deny_result(ctx, "information-flow", reason)
                ctx.decision = Decision.require_approval(reason, rule.category, rule="flow")
        if self.cross is not None:
            denied = self._cross_namespace(self.cross, ctx, key, tuple(checked))
            if denied is not None:
                return denied
        return await nxt(ctx)

    def _trace_arguments(
        self, ctx: CallContext, key: ContextKey, rule: SinkRule
    ) -> list[tuple[str, bool]]:
        """Each sensitive argument present, and whether it comes from the trusted instruction."""
        trusted = self.taint.trusted_instruction(key) or ""
        names = rule.sensitive
        if "*" in names:
            names = tuple(k for k, v in ctx.call.arguments.items() if isinstance(v, str))
        out: list[tuple[str, bool]] = []
        for arg in names:
            if arg not in ctx.call.arguments:
                continue
            value = str(ctx.call.arguments[arg])
            ok = bool(value and trusted and value in trusted)
            ctx.provenance.append(
                f"flow: {arg} from trusted instruction"
                if ok
                else f"flow: {arg} not from trusted context"
            )
            out.append((arg, ok))
        return out

    def _cross_namespace(
        self,
        cross: CrossNamespaceCheck,
        ctx: CallContext,
        key: ContextKey,
        checked: tuple[tuple[str, bool], ...],
    ) -> ToolResult | None:
        """``data_access`` when the context carries other servers' output: a denial, or None."""
        sources, complete = self.taint.sources(key)
        others = tuple(s for s in sources if s != ctx.call.server)
        if not others and complete:
            return None
        flow = CrossNamespace(
            from_servers=others,
            complete=complete,
            tainted=self.taint.is_tainted(key),
            sensitive=checked,
        )
        decision = cross(ctx.call, flow)
        ctx.provenance.append(f"data_access: {decision.kind} by {decision.rule}")
        if decision.kind == "deny":
            return deny_result(ctx, "data-access", decision.reason)
        if decision.kind == "require_approval" and (
            ctx.decision is None or ctx.decision.kind == "allow"
        ):
            ctx.decision = decision
        return None


@dataclass
class ApprovalStep:
    """``require_approval`` goes to the approver; timeout or error means deny."""

    approver: Approver
    timeout_s: float
    timeout_for: Callable[[Category], float] | None = None

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        decision = ctx.decision
        if decision is None or decision.kind != "require_approval":
            return await nxt(ctx)
        timeout = self.timeout_s
        if self.timeout_for is not None and decision.category is not None:
            timeout = self.timeout_for(decision.category)
        if isinstance(self.approver, ProvenanceApprover):
            ask = asyncio.to_thread(
                self.approver.decide_traced, ctx.call, decision, tuple(ctx.provenance)
            )
        else:
            ask = asyncio.to_thread(self.approver.decide, ctx.call, decision)
        try:
            answer = await asyncio.wait_for(ask, timeout)
        except TimeoutError:
            return deny_result(
                ctx, "approval", f"no approval within {timeout:g}s ({decision.reason})"
            )
        except StockadeError as e:
            return deny_result(ctx, "approval", f"the approver failed: {e.what}")
        ctx.decision = answer
        if answer.kind != "allow":
            return deny_result(ctx, "approval", answer.reason or "not approved")
        ctx.provenance.append(f"approved: {answer.reason or answer.rule or 'yes'}")
        return await nxt(ctx)


@dataclass
class OutputHandling:
    """Every result is untrusted: sanitise, wrap, bound, and taint the caller's context."""

    taint: TaintTracker
    limit: int = 65536

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        raw = await nxt(ctx)
        self.taint.mark_tainted(
            ContextKey(client=ctx.call.client, conversation=ctx.call.session),
            ctx.exposed_name,
            server=ctx.call.server,
        )
        if not ctx.outcome:
            ctx.outcome = "error" if raw.get("isError") else "ok"
        return tag_result(raw, source=ctx.exposed_name, limit=self.limit)


_SECRET_KEY = re.compile(
    r"(pass(word|wd)?|secret|token|api[_-]?key|auth|credential|cookie|private)", re.I
)
_SECRET_VALUE = re.compile(
    r"(ghp_[A-Za-z0-9]{20,}|gh[ousr]_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|"
    r"xox[abprs]-[A-Za-z0-9-]{10,}|-----BEGIN [A-Z ]*PRIVATE KEY-----|"
    r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,})"
)


def redact(value: Any, *, limit: int = 256) -> Any:
    """The audit copy of a value: secret-looking keys and values removed, long strings cut."""
    if isinstance(value, dict):
        return {
            str(k): "[redacted]" if _SECRET_KEY.search(str(k)) else redact(v, limit=limit)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v, limit=limit) for v in value[:50]]
    if isinstance(value, str):
        value = _SECRET_VALUE.sub("[redacted]", value)
        return value if len(value) <= limit else value[:limit] + f"…[{len(value)} chars]"
    return value


@dataclass
class AuditStep:
    """Wraps the whole chain: records request, decision, provenance and a result summary."""

    sink: AuditSink
    session_id: str | None = None
    evidence: Callable[[str, dict[str, Any]], None] | None = None

    async def __call__(self, ctx: CallContext, nxt: Next) -> ToolResult:
        result = await nxt(ctx)
        d = ctx.decision
        content = result.get("content")
        data = {
            "client": ctx.call.client,
            "conversation": ctx.call.session,
            "tool": ctx.exposed_name,
            "arguments": redact(ctx.call.arguments),
            "decision": None if d is None else {"kind": d.kind, "reason": d.reason, "rule": d.rule},
            "provenance": list(ctx.provenance),
            "outcome": ctx.outcome or "ok",
            "result": {
                "is_error": bool(result.get("isError")),
                "blocks": len(content) if isinstance(content, list) else 0,
            },
        }
        self.sink.append("gateway.call", data, session_id=self.session_id)
        if self.evidence is not None:  # the store copy also carries the call's timing
            self.evidence(
                ctx.call.server, {**data, "timing": dict(ctx.timing)} if ctx.timing else data
            )
        return result


Dispatch = Callable[[CallContext], Awaitable[ToolResult]]
