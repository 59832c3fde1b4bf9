from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from stockade.api import ControlPlane, RecordingStopper, StoreRevocations
from stockade.identity import TokenAuthority
from stockade.models import EndReason, RunStatus
from stockade.store import RunStore

from ._helpers import T0, FixedClock, record, store_opener


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0)


@pytest.fixture
def open_store(tmp_path: Path) -> Callable[[], RunStore]:
    opener = store_opener(tmp_path / "runs.db")
    with opener() as s:
        s.create(record("r1"))
        s.create(record("r2", status=RunStatus.KILLED, end_reason=EndReason.DEADLINE, ended_at=T0))
        s.add_evidence("r1", "decision", {"decision": {"kind": "deny", "reason": "x"}})
        s.add_evidence("r1", "decision", {"decision": {"kind": "allow", "reason": ""}})
        s.add_evidence("r2", "sandbox.refused", {"what": "no gVisor"})
    return opener


@pytest.fixture
def revocations(open_store: Callable[[], RunStore], clock: FixedClock) -> StoreRevocations:
    return StoreRevocations(open_store, clock)


@pytest.fixture
def tokens(clock: FixedClock, revocations: StoreRevocations) -> TokenAuthority:
    return TokenAuthority(b"t" * 32, clock, revocations)


@pytest.fixture
def cp(
    open_store: Callable[[], RunStore],
    clock: FixedClock,
    revocations: StoreRevocations,
    tokens: TokenAuthority,
) -> ControlPlane:
    return ControlPlane(
        open_store=open_store,
        clock=clock,
        stopper=RecordingStopper(open_store, revocations),
        policy_hash="sha256:" + "b" * 64,
        tokens=tokens,
        readiness={"store": lambda: "ok"},
    )
