"""A decider wrapper for the gateway: argument inspection turns a risky ``allow`` into approval.

The policy engine decides by tool rules; this wrapper adds the classifier's argument inspection
(a URL to a never-approved domain, a path outside the allowlist, an amount, a credential) on top of
an ``allow``: such a call becomes ``require_approval`` in the first category found. A deny or an
approval request passes through unchanged, so the wrapper only ever tightens.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stockade.models import Decision, ToolCall

from ._classify import ClassifierRules, classify

__all__ = ["ClassifyingDecider"]


class ClassifyingDecider:
    def __init__(self, inner: Any, rules_for: Callable[[str], ClassifierRules]) -> None:
        self._inner = inner
        self._rules_for = rules_for

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        decision: Decision = self._inner(call, context)
        if decision.kind != "allow":
            return decision
        found = classify(call, self._rules_for(call.server), arguments_only=True)
        if not found.sensitive:
            return decision
        return Decision.require_approval(
            "; ".join(found.reasons),
            found.categories[0],
            rule=f"classify ({decision.rule or 'allow'})",
            tier=decision.tier,
        )
