""":class:`StoreApprover`, the gateway's ``Approver``: record, wait for an operator, re-check.

``decide(call, decision)``:

1. kill switch engaged -> deny (recorded);
2. record a pending request bound to the exact call (per-category timeout from the policy);
3. wait, in bounded steps, for an operator decision written to the store by another channel
   (``stockade approvals approve``, the web page); the deadline expires it -> deny;
4. approved -> re-check against the *current* policy hash, image and kill switch immediately
   before returning (single use: the approval is consumed) -> allow; anything else -> deny.

With an elicitation channel (:mod:`._elicit_channel`), a stored pending request is also asked of
the agent's client (``opened``), and a 2026-07-28 retry resumes the request its sealed state names
(``resumed``) instead of recording a new one; a first 2026-07-28 round is answered at once with
``input_required`` (a deny decision with rule :data:`INPUT_REQUIRED_RULE`: the call does not run in
this round).

Every error path answers deny (a :class:`~stockade.errors.StockadeError` is turned into a deny
decision naming it; the gateway also bounds the whole wait).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

from stockade.errors import StockadeError
from stockade.models import Category, Clock, Decision, ToolCall

from ._bind import new_request, recheck
from ._binding import CallBinding
from ._elicit_channel import ElicitationChannel
from ._machine import Event, EventKind, State
from ._remember import covering
from ._store import ApprovalStore

__all__ = ["INPUT_REQUIRED_RULE", "StoreApprover", "Waiter"]

#: The rule of the deny that stands for "answered with input_required" (2026-07-28, first round).
INPUT_REQUIRED_RULE = "approvals.input_required"

#: ``wait(seconds)`` blocks at most ``seconds`` (tests pass one that advances a fake clock).
Waiter = Callable[[float], None]


def _event_wait(seconds: float) -> None:
    threading.Event().wait(seconds)


class StoreApprover:
    def __init__(
        self,
        store: ApprovalStore,
        clock: Clock,
        *,
        policy_hash: Callable[[], str],
        timeout_for: Callable[[Category], float],
        image_digest: Callable[[str], str | None] = lambda server: None,
        poll_s: float = 0.2,
        wait: Waiter | None = None,
        new_id: Callable[[], str] = lambda: "apr_" + secrets.token_hex(8),
        margin_s: float = 1.0,
        run_id: Callable[[str], str | None] = lambda server: None,
        channel: ElicitationChannel | None = None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._policy_hash = policy_hash
        self._timeout_for = timeout_for
        self._image_digest = image_digest
        self._poll = poll_s
        self._wait = wait or _event_wait
        self._new_id = new_id
        self._margin = margin_s
        self._run_id = run_id
        self._channel = channel

    def _timeout(self, category: Category) -> float:
        # The request expires a little before the caller (the gateway's ApprovalStep, given the
        # same per-category timeout) gives up, so an approval can never be spent on a call the
        # gateway has already answered with a timeout.
        t = self._timeout_for(category)
        return t - self._margin if t > 2 * self._margin else t / 2

    def decide(self, call: ToolCall, decision: Decision) -> Decision:
        return self.decide_traced(call, decision, ())

    def decide_traced(
        self, call: ToolCall, decision: Decision, provenance: tuple[str, ...]
    ) -> Decision:
        """``decide``, recording how the call came to be flagged (taint source, flow checks)."""
        try:
            return self._decide(call, decision, provenance)
        except StockadeError as e:
            return Decision.deny(f"approval failed: {e.what}", rule="approvals")

    def _decide(self, call: ToolCall, decision: Decision, provenance: tuple[str, ...]) -> Decision:
        kill = self._store.kill_switch()
        if kill.engaged:
            return Decision.deny(f"the kill switch is engaged ({kill.reason})", rule="approvals")
        if decision.category is None:
            return Decision.deny("approval requested without a category", rule="approvals")
        image_digest = self._image_digest(call.server)
        policy_hash = self._policy_hash()
        resumed = None
        if self._channel is not None:
            digest = CallBinding.of(call, image_digest=image_digest, policy_hash=policy_hash)
            resumed = self._channel.resumed(call, digest.digest)
        if resumed is None:
            request_id = self._record(
                call,
                decision,
                category=decision.category,
                provenance=provenance,
                image_digest=image_digest,
                policy_hash=policy_hash,
            )
            current = self._store.get(request_id, now=self._clock.now())
            if (
                self._channel is not None
                and current.state == State.PENDING
                and self._channel.opened(current)
            ):
                return Decision.deny(
                    f"input required: the client is asked about approval request {request_id}",
                    rule=INPUT_REQUIRED_RULE,
                )
        else:
            request_id = resumed
        # Bounded: at most ceil(timeout / poll) + 1 rounds whatever the clock does.
        rounds = int(self._timeout(decision.category) / self._poll) + 2
        for _ in range(rounds):
            current = self._store.get(request_id, now=self._clock.now())
            if current.state != State.PENDING:
                break
            self._wait(self._poll)
        else:
            current = self._store.get(request_id, now=self._clock.now())
        if current.state == State.PENDING:
            # The clock did not reach the deadline within the bounded rounds: cancel, deny.
            self._store.transition(
                current.id,
                Event(
                    kind="cancel",
                    by="stockade",
                    channel="system",
                    at=self._clock.now(),
                    reason="no decision within the approver's bounded wait",
                ),
            )
            return Decision.deny("no decision within the approval wait", rule="approvals")
        if current.state != State.APPROVED:
            why = current.note or current.state.value
            return Decision.deny(
                f"approval {current.state.value} by {current.decided_by or 'stockade'}: {why}",
                rule="approvals",
            )
        verdict, after, record = recheck(  # the policy and image as they are now, not as above
            current,
            call,
            image_digest=self._image_digest(call.server),
            policy_hash=self._policy_hash(),
            now=self._clock.now(),
            killed=self._store.kill_switch().engaged,
        )
        if record is not None:
            self._store.save(current, after, record)
        return verdict

    def _record(
        self,
        call: ToolCall,
        decision: Decision,
        *,
        category: Category,
        provenance: tuple[str, ...],
        image_digest: str | None,
        policy_hash: str,
    ) -> str:
        """Store a pending request for ``call``; a remembered decision covering it decides it."""
        request = new_request(
            call,
            decision,
            request_id=self._new_id(),
            image_digest=image_digest,
            policy_hash=policy_hash,
            now=self._clock.now(),
            timeout_s=self._timeout(category),
            run_id=self._run_id(call.server) or "",
            provenance=provenance,
        )
        self._store.add(request)
        now = self._clock.now()
        remembered = covering(
            self._store.remembered(now=now, server=call.server, tool=call.tool),
            call,
            category,
            now,
        )
        if remembered is not None:
            kind: EventKind = "approve" if remembered.verdict == "allow" else "deny"
            self._store.transition(
                request.id,
                Event(
                    kind=kind,
                    by=f"remembered:{remembered.id}",
                    channel="system",
                    at=now,
                    reason=f"remembered decision by {remembered.created_by} "
                    f"({remembered.pattern_kind} {remembered.pattern}, scope {remembered.scope})",
                ),
            )
        return request.id
