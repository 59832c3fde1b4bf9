"""Run records and the audit event shape."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field

from ._base import Frozen


class RunStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    EXITED = "exited"
    FAILED = "failed"
    KILLED = "killed"
    REFUSED = "refused"
    LOST = "lost"


class EndReason(StrEnum):
    EXITED = "exited"
    DEADLINE = "deadline"
    MEMORY_LIMIT = "memory_limit"
    CPU_LIMIT = "cpu_limit"
    KILLED_BY_OPERATOR = "killed_by_operator"
    REFUSED = "refused"
    LOST = "lost"
    ERROR = "error"


class RunRecord(Frozen):
    """One run as kept in the run store; the run trace is built from it plus its evidence."""

    run_id: str = Field(min_length=1)
    workload: str
    kind: str = "job"
    server: str | None = None
    backend: str = ""
    policy_hash: str = ""
    image_digest: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    network_profile: dict[str, Any] = Field(default_factory=dict)
    status: RunStatus = RunStatus.PENDING
    end_reason: EndReason | None = None
    exit_code: int | None = None
    signal: int | None = None
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None


class AuditEvent(Frozen):
    """One line of the audit log (JSON Lines). ``prev`` chains; ``mac`` authenticates."""

    seq: int = Field(ge=0)
    ts: str
    type: str = Field(min_length=1)
    run_id: str | None = None
    session_id: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    prev: str
    mac: str
