"""The decision engine: pure. A call, a context (time, rate state) in; a decision, a context out.

Semantics (documented in docs/policy.md):

1. unknown server -> deny; a ``clients`` section that does not grant the caller this server -> deny;
2. rules whose ``tool`` (exact name or glob) matches the tool are collected; none -> deny
   (``tools.default`` is always deny);
3. any matching ``deny`` rule -> deny (deny beats allow, whatever the order or specificity);
4. otherwise the most specific matching rule decides: an exact name beats a glob, then more literal
   characters, then the stricter action (approve over allow), then the earlier rule;
5. its argument checks (JSON Schema, then per-argument rules) -> deny naming the argument and rule;
6. its rate limit (per client, server and tool) -> deny when the bucket is empty;
7. ``approve`` -> require_approval(category); ``allow`` at tier high/critical with a category ->
   require_approval(category) unless ``allow_without_approval``; otherwise allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase

from stockade.models import Decision, Frozen, RiskTier, ToolCall
from stockade.textsafe import safe_text

from ._arguments import CompiledArguments
from ._policy import Policy
from ._ratelimit import RateState, take
from ._tools import ToolRule

__all__ = ["DecisionContext", "DecisionEngine", "decide"]

_GLOB_CHARS = set("*?[")


class DecisionContext(Frozen):
    """What a decision depends on besides the call: the time (seconds) and the rate state."""

    now: float
    rate: RateState = RateState()


def _shown(text: str) -> str:
    return safe_text(text, single_line=True, limit=80)


@dataclass(frozen=True)
class _Rule:
    id: str
    index: int
    rule: ToolRule
    exact: bool
    arguments: CompiledArguments | None

    @property
    def specificity(self) -> tuple[int, int, int, int]:
        literal = sum(1 for c in self.rule.tool if c not in _GLOB_CHARS)
        return (int(self.exact), literal, int(self.rule.action == "approve"), -self.index)

    def matches(self, tool: str) -> bool:
        return tool == self.rule.tool if self.exact else fnmatchcase(tool, self.rule.tool)


class DecisionEngine:
    """A policy compiled for deciding. Holds no mutable state; safe to share."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._rules: dict[str, tuple[_Rule, ...]] = {}
        for server in policy.servers:
            self._rules[server.name] = tuple(
                _Rule(
                    id=f"{server.name}.tools.rules[{i}]",
                    index=i,
                    rule=r,
                    exact=not (_GLOB_CHARS & set(r.tool)),
                    arguments=CompiledArguments(r.arguments) if r.arguments else None,
                )
                for i, r in enumerate(server.tools.rules)
            )
        clients = policy.doc.clients
        self._clients = None if clients is None else {c.name: frozenset(c.servers) for c in clients}

    def decide(self, call: ToolCall, context: DecisionContext) -> tuple[Decision, DecisionContext]:
        rules = self._rules.get(call.server)
        if rules is None:
            return Decision.deny(f"unknown server {_shown(call.server)!r}"), context
        if self._clients is not None and call.server not in self._clients.get(
            call.client, frozenset()
        ):
            return (
                Decision.deny(
                    f"client {_shown(call.client)!r} is not granted server {call.server!r}"
                ),
                context,
            )
        matching = [r for r in rules if r.matches(call.tool)]
        if not matching:
            return (
                Decision.deny(
                    f"no rule allows tool {_shown(call.tool)!r} on server {call.server!r} "
                    "(default: deny)"
                ),
                context,
            )
        for r in matching:
            if r.rule.action == "deny":
                return (
                    Decision.deny(
                        f"tool {_shown(call.tool)!r} is denied by rule {r.rule.tool!r}",
                        rule=r.id,
                        tier=r.rule.tier,
                    ),
                    context,
                )
        chosen = max(matching, key=lambda r: r.specificity)
        rule = chosen.rule
        if chosen.arguments is not None:
            why = chosen.arguments.check(call.arguments)
            if why is not None:
                return Decision.deny(f"{why} (rule {chosen.id})", rule=chosen.id, tier=rule.tier), (
                    context
                )
        if rule.rate_limit is not None:
            key = f"{call.client}\x1f{call.server}\x1f{call.tool}"
            ok, bucket = take(context.rate.buckets.get(key), rule.rate_limit, context.now)
            context = context.model_copy(
                update={"rate": context.rate.with_bucket(key, bucket, context.now)}
            )
            if not ok:
                return (
                    Decision.deny(
                        f"rate limit of rule {chosen.id} exceeded "
                        f"({rule.rate_limit.rate} per {rule.rate_limit.per:g}s, "
                        f"burst {rule.rate_limit.capacity})",
                        rule=chosen.id,
                        tier=rule.tier,
                    ),
                    context,
                )
        if rule.action == "approve":
            assert rule.category is not None  # noqa: S101 - the schema requires it
            return (
                Decision.require_approval(
                    f"rule {chosen.id} requires approval for tool {_shown(call.tool)!r}",
                    rule.category,
                    rule=chosen.id,
                    tier=rule.tier,
                ),
                context,
            )
        sensitive = rule.tier.rank >= RiskTier.HIGH.rank
        if sensitive and rule.category is not None and not rule.allow_without_approval:
            return (
                Decision.require_approval(
                    f"tool {_shown(call.tool)!r} is {rule.tier.value}-risk "
                    f"{rule.category.value}: approval required",
                    rule.category,
                    rule=chosen.id,
                    tier=rule.tier,
                ),
                context,
            )
        return Decision.allow(f"allowed by rule {chosen.id}", rule=chosen.id, tier=rule.tier), (
            context
        )


_ENGINES: dict[str, DecisionEngine] = {}


def decide(
    policy: Policy, call: ToolCall, context: DecisionContext
) -> tuple[Decision, DecisionContext]:
    """Convenience: decide with an engine compiled once per effective policy hash."""
    engine = _ENGINES.get(policy.effective_hash)
    if engine is None:
        if len(_ENGINES) >= 32:
            _ENGINES.clear()
        engine = _ENGINES[policy.effective_hash] = DecisionEngine(policy)
    return engine.decide(call, context)
