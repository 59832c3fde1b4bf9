"""A policy decider built from the gateway section's per-tool rules (default deny).

Used until (and alongside) the policy engine: a tool with no rule is denied; annotations from the
server are hints that never lower a decision.
"""

from __future__ import annotations

from collections.abc import Mapping

from stockade.models import Decision, ToolCall

from ._config import GatewayConfig, ToolRule
from ._interceptors import DecisionContext, SinkRule

__all__ = ["RuleDecider", "sink_rules"]


class RuleDecider:
    def __init__(self, rules: Mapping[tuple[str, str], ToolRule]) -> None:
        self._rules = dict(rules)

    @classmethod
    def from_config(cls, cfg: GatewayConfig) -> RuleDecider:
        return cls({(s.name, t): r for s in cfg.servers for t, r in s.tools.items()})

    def __call__(self, call: ToolCall, context: DecisionContext) -> Decision:
        rule = self._rules.get((call.server, call.tool))
        name = f"{call.server}.tools.{call.tool}"
        if rule is None:
            return Decision.deny("no rule allows this tool (default: deny)", rule="default")
        if rule.action == "allow":
            return Decision.allow(rule=name)
        if rule.action == "require_approval":
            return Decision.require_approval("policy requires approval", rule.category, rule=name)
        return Decision.deny("denied by policy rule", rule=name)


def sink_rules(cfg: GatewayConfig) -> dict[tuple[str, str], SinkRule]:
    return {
        (s.name, t): SinkRule(
            server=s.name,
            tool=t,
            sensitive=r.sensitive_args,
            category=r.category,
            when_tainted=r.when_tainted,
        )
        for s in cfg.servers
        for t, r in s.tools.items()
        if r.sensitive_args
    }
