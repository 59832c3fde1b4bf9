"""Wiring a :class:`StoreApprover` from a policy file (an adapter: it reads the file).

``policy_file_hash(path)`` re-reads the policy on every call, so the re-check before dispatch
compares the approval's bound hash with the policy *as it is now on disk*: an edit between the
request and the dispatch voids the approval. A policy that no longer loads raises (-> deny).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from stockade.models import AuditSink, Clock
from stockade.policy import Policy, load_policy

from ._approver import StoreApprover, Waiter
from ._store import ApprovalStore

__all__ = ["policy_file_hash", "store_approver"]


def policy_file_hash(path: Path | str) -> Callable[[], str]:
    def current() -> str:
        return load_policy(path).effective_hash

    return current


def store_approver(
    policy: Policy,
    store_path: Path | str,
    clock: Clock,
    *,
    audit: AuditSink | None = None,
    image_digest: Callable[[str], str | None] = lambda server: None,
    wait: Waiter | None = None,
    run_id: Callable[[str], str | None] = lambda server: None,
) -> StoreApprover:
    """The gateway approver for ``policy``: per-category timeouts from ``approvals``, the bound
    policy hash re-read from ``policy.file`` (or fixed for an in-memory policy)."""
    if policy.file and policy.file != "<memory>":
        current = policy_file_hash(policy.file)
    else:
        fixed = policy.effective_hash

        def current() -> str:
            return fixed

    return StoreApprover(
        ApprovalStore(store_path, audit=audit),
        clock,
        policy_hash=current,
        timeout_for=policy.doc.approvals.timeout_for,
        image_digest=image_digest,
        wait=wait,
        run_id=run_id,
    )
