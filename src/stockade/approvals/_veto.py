"""The gateway's veto wiring: one decider that wraps the policy's, and the kill-switch watch.

:class:`VetoDecider` composes, around the policy decider (outermost first):

1. the kill switch: while engaged every call is denied (the gateway's sandboxes are stopped too,
   see :func:`watch_kill`);
2. escalation (:class:`EscalatingDecider`): in a session with recent denials every allow needs
   approval;
3. argument inspection (:class:`ClassifyingDecider`): a risky allow becomes ``require_approval``.

It keeps the inner decider's ``listable`` so ``tools/list`` is answered from the policy's rules,
never by probing a tool with empty arguments.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from stockade.models import AuditSink, Clock, Decision, ToolCall
from stockade.policy import Policy

from ._classify import rules_from_policy
from ._classifying import ClassifyingDecider
from ._escalating import EscalatingDecider
from ._kill import KillSwitch
from ._store import ApprovalStore

__all__ = ["VetoDecider", "default_approver", "watch_kill"]


def default_approver(policy: Policy | None) -> Literal["store", "list"]:
    """Who answers ``require_approval`` when ``stockade gateway`` is given no ``--approver``.

    ``store`` (the operator channels) for every stockade policy; ``list`` (deny what is not in
    ``--auto-approve``) only for the stand-alone ``gateway:`` format, which has no approval store.
    Tool rules are not the only way a call comes to need a human: under any stockade policy
    argument inspection (a URL to a never-approved domain, a path outside the allowlist, an
    amount, a credential), escalation and a delegated OPA ``tool_call`` can turn an allow into
    ``require_approval``, and the ``list`` approver would deny those without asking anybody.
    """
    return "list" if policy is None else "store"


class VetoDecider:
    """Kill switch, escalation and argument inspection around ``inner`` (only ever tightens)."""

    def __init__(
        self,
        inner: Any,
        policy: Policy,
        store: ApprovalStore,
        clock: Clock,
        *,
        audit: AuditSink | None = None,
    ) -> None:
        self._inner = inner
        self._store = store
        self._chain = EscalatingDecider(
            ClassifyingDecider(inner, lambda server: rules_from_policy(policy, server)),
            store,
            clock,
            audit=audit,
        )

    def __call__(self, call: ToolCall, context: Any) -> Decision:
        kill = self._store.kill_switch()
        if kill.engaged:
            return Decision.deny(
                f"the kill switch is engaged by {kill.by or 'an operator'} ({kill.reason})",
                rule="kill-switch",
            )
        decision: Decision = self._chain(call, context)
        return decision

    def listable(self, client: str, server: str, tool: str) -> bool:
        listable = getattr(self._inner, "listable", None)
        if listable is None:
            return True  # the gateway then probes the wrapped decider itself
        return bool(listable(client, server, tool))


OnKill = Callable[[KillSwitch], Awaitable[None]]


async def watch_kill(
    store: ApprovalStore, on_kill: OnKill, *, poll_s: float = 0.5, rounds: int | None = None
) -> None:
    """Poll the kill switch; call ``on_kill`` once each time it becomes engaged.

    Runs until cancelled (or for ``rounds`` polls). Reading the flag is a local SQLite query.
    """
    was = False
    n = 0
    while rounds is None or n < rounds:
        n += 1
        kill = await asyncio.to_thread(store.kill_switch)
        if kill.engaged and not was:
            await on_kill(kill)
        was = kill.engaged
        await asyncio.sleep(poll_s)
