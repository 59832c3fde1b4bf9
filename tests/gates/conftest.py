from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stockade.audit import AuditLog
from stockade.gates import AuditTarget, GateInputs, record_policy_version
from stockade.models import RunRecord
from stockade.store import RunStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LEAKED = "correct-horse-battery-staple"


class StepClock:
    def __init__(self) -> None:
        self._t = T0

    def now(self) -> datetime:
        self._t += timedelta(milliseconds=1)
        return self._t


@dataclass
class World:
    home: Path
    policy: Path
    inputs: GateInputs

    @property
    def log(self) -> Path:
        return self.inputs.audit.log


def _open(db: Path) -> RunStore:
    return RunStore.open(db)


@pytest.fixture
def world(tmp_path: Path) -> World:
    """A clean state: a recorded policy, one run with a trace, an intact sealed audit log."""
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ndefault: deny\n")
    db = tmp_path / "runs.db"
    from stockade.policy import load_policy

    with _open(db) as s:
        s.create(RunRecord(run_id="r1", workload="job", created_at=T0))
        s.add_evidence("r1", "decision", {"decision": {"kind": "allow", "reason": "ok"}})
        record_policy_version(s, load_policy(policy).effective_hash, by="test", document="", at=T0)
    key_dir = tmp_path / "keys"
    log = tmp_path / "audit" / "audit.jsonl"
    log.parent.mkdir()
    with AuditLog.open(log, key_dir, clock=StepClock(), fsync="never") as sink:
        sink.append("run_started", {"workload": "job"}, run_id="r1")
        sink.append("tool_call", {"tool": "fetch"}, run_id="r1")
        sink.append("tool_call", {"tool": "other"}, run_id="r2")
    return World(
        home=tmp_path,
        policy=policy,
        inputs=GateInputs(
            open_store=lambda: _open(db),
            audit=AuditTarget(log, key_dir),
            secret_values=(LEAKED,),
            runtimes={"fake": lambda: "present"},
        ),
    )
