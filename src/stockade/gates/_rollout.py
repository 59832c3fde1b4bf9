"""Policy apply (dry run by default), rollback to the previous version, and the rollback drill."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from stockade.errors import PolicyError
from stockade.models import Clock, Frozen
from stockade.policy import load_policy
from stockade.store import RunStore

from ._versions import (
    PolicyVersion,
    install_policy,
    latest_policy_version,
    previous_policy_version,
    record_policy_version,
)

__all__ = [
    "ApplyPlan",
    "DrillResult",
    "apply_policy",
    "drill_rollback",
    "plan_apply",
    "rollback_policy",
]


class ApplyPlan(Frozen):
    recorded: PolicyVersion | None
    new_hash: str
    changed: bool


class DrillResult(Frozen):
    seconds: float
    rto_seconds: float
    restored_hash: str
    ok: bool


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise PolicyError(f"cannot read {path}: {e.strerror}", "check the path") from e


def plan_apply(store: RunStore, candidate: Path) -> ApplyPlan:
    new_hash = load_policy(candidate).effective_hash
    recorded = latest_policy_version(store)
    return ApplyPlan(
        recorded=recorded, new_hash=new_hash, changed=recorded is None or recorded.hash != new_hash
    )


def apply_policy(
    store: RunStore, candidate: Path, active: Path, *, by: str, clock: Clock
) -> PolicyVersion:
    document = _read(candidate)
    if active.exists() and latest_policy_version(store) is None:
        # first apply over an existing policy: keep what was there as version 1 to roll back to
        record_policy_version(
            store,
            load_policy(active).effective_hash,
            by=f"{by} (found in place)",
            document=_read(active),
            at=clock.now(),
        )
    new_hash = install_policy(document, active)
    return record_policy_version(store, new_hash, by=by, document=document, at=clock.now())


def rollback_policy(store: RunStore, active: Path, *, by: str, clock: Clock) -> PolicyVersion:
    previous, document = previous_policy_version(store)
    restored = install_policy(document, active)
    if restored != previous.hash:
        raise PolicyError(
            f"rolled-back policy hashes to {restored}, expected {previous.hash}",
            "the policy resolves differently on this host now (paths?); inspect it",
        )
    return record_policy_version(
        store, restored, by=f"{by} (rollback to version {previous.id})", document=document,
        at=clock.now(),
    )  # fmt: skip


def drill_rollback(
    store: RunStore,
    candidate: Path,
    active: Path,
    *,
    by: str,
    clock: Clock,
    rto_seconds: float,
    timer: Callable[[], float] = time.monotonic,
) -> DrillResult:
    """Apply ``candidate`` over ``active``, roll it back, and time the round trip."""
    before = load_policy(active).effective_hash
    if load_policy(candidate).effective_hash == before:
        raise PolicyError(
            "the drill candidate has the same effective hash as the active policy",
            "use a candidate that changes something",
        )
    start = timer()
    apply_policy(store, candidate, active, by=f"{by} (drill)", clock=clock)
    restored = rollback_policy(store, active, by=f"{by} (drill)", clock=clock)
    seconds = timer() - start
    return DrillResult(
        seconds=seconds,
        rto_seconds=rto_seconds,
        restored_hash=restored.hash,
        ok=restored.hash == before and seconds <= rto_seconds,
    )
