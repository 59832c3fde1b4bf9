"""OPA as a second opinion after the built-in decision (docs/policy.md, "OPA").

:class:`OpaDecider` wraps the gateway's :class:`PolicyDecider`. When the policy delegates
``tool_call``, every call the built-in engine does not deny is put to Rego with the documented input
document; OPA can only tighten: its deny denies, its require_approval asks a human, its allow keeps
the built-in decision. OPA unavailable, erroring, undefined or malformed denies with the reason
(:class:`stockade.opa.OpaDelegate` fails closed). Each OPA answer is audited as ``opa_decision`` and
its reason travels in the decision the trace records. Without an ``opa:`` section, or with
``enabled: false``, the built-in engine alone decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from stockade.models import AuditSink, Category, Decision, ToolCall
from stockade.opa import (
    OpaDelegate,
    OpaError,
    OpaEvaluator,
    OpaInput,
    OpaServerEvaluator,
    RegoEvaluator,
)

from ._interceptors import DecisionContext, PolicyDecider
from ._taint import ContextKey, TaintTracker

__all__ = ["OpaDecider", "opa_decider_for"]


class OpaDecider:
    """A :class:`PolicyDecider`: the built-in decision first, then OPA, which may only tighten."""

    def __init__(
        self,
        inner: PolicyDecider,
        delegate: OpaDelegate,
        *,
        policy: Any = None,
        digests: Mapping[str, str] | None = None,
        audit: AuditSink | None = None,
        taint: TaintTracker | None = None,
    ) -> None:
        self._inner = inner
        self._delegate = delegate
        self._policy = policy
        self._digests = dict(digests or {})
        self._audit = audit
        self.taint = taint  # set to the gateway's tracker to send taint provenance to Rego

    def _categories(self, call: ToolCall, base: Decision) -> tuple[Category, ...]:
        cats: list[Category] = [base.category] if base.category is not None else []
        if self._policy is not None and self._policy.has_server(call.server):
            for rule in self._policy.server(call.server).tools.rules:
                cat = getattr(rule, "category", None)
                if fnmatchcase(call.tool, rule.tool) and cat is not None and cat not in cats:
                    cats.append(cat)
        return tuple(cats)

    def _provenance(self, call: ToolCall) -> tuple[str, ...]:
        if self.taint is None:
            return ()
        key = ContextKey(client=call.client, conversation=call.session)
        return (self.taint.describe(key),)

    def opa_input(self, call: ToolCall, context: DecisionContext, base: Decision) -> OpaInput:
        """The exact document Rego sees as ``input`` for this call."""
        return OpaInput.for_call(
            call,
            image_digest=self._digests.get(call.server),
            categories=self._categories(call, base),
            tainted=context.tainted,
            provenance=self._provenance(call),
            policy_hash=str(getattr(self._policy, "effective_hash", "")),
        )

    def __call__(self, call: ToolCall, context: DecisionContext) -> Decision:
        base = self._inner(call, context)
        if base.kind == "deny":
            return base
        opa = self._delegate.decide(self.opa_input(call, context, base))
        if self._audit is not None and not context.probe:
            self._audit.append(
                "opa_decision",
                {
                    "client": call.client,
                    "server": call.server,
                    "tool": call.tool,
                    "result": opa.kind,
                    "reason": opa.reason,
                    "rule": opa.rule,
                },
                session_id=call.session or None,
            )
        if opa.kind == "allow":
            return base
        return opa

    def listable(self, client: str, server: str, tool: str) -> bool:
        """Listing: the built-in listing, and OPA does not deny the tool with empty arguments."""
        inner_listable = getattr(self._inner, "listable", None)
        if inner_listable is not None and not inner_listable(client, server, tool):
            return False
        call = ToolCall(client=client, server=server, tool=tool, arguments={})
        ctx = DecisionContext(tainted=False, exposed_name=tool, probe=True)
        return self(call, ctx).kind != "deny"


def opa_decider_for(
    policy: Any,
    inner: PolicyDecider,
    *,
    audit: AuditSink | None = None,
    evaluator: OpaEvaluator | None = None,
    digests: Mapping[str, str] | None = None,
) -> PolicyDecider:
    """``inner`` unless the policy delegates ``tool_call`` to OPA; then an :class:`OpaDecider`.

    The evaluator comes from the policy's ``opa:`` section (Rego modules beside the policy file,
    compiled now; or the OPA server URL with the section's timeout) unless one is given.
    """
    section = policy.doc.opa
    if section is None or not section.delegates("tool_call"):
        return inner
    if evaluator is None:
        if section.mode == "url":
            evaluator = OpaServerEvaluator(section.url, timeout_s=section.timeout_s)
        else:
            from stockade.policy._opa import read_opa_modules

            tree = {"opa": {"modules": list(section.modules)}}
            modules, problems = read_opa_modules(tree, policy.file)
            if problems:
                raise OpaError(
                    f"the policy's Rego modules cannot be used: {problems[0].what}",
                    problems[0].fix,
                )
            evaluator = RegoEvaluator(modules)
    return OpaDecider(
        inner, OpaDelegate(evaluator, section.prefix), policy=policy, digests=digests, audit=audit
    )
