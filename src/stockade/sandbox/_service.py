"""A launch that is accounted: a run record before, during and after, and audit events."""

from __future__ import annotations

import subprocess  # nosec B404
import uuid
from pathlib import Path
from typing import IO, Any

from stockade.errors import SandboxError, StockadeError
from stockade.models import AuditSink, Clock, EndReason, RunRecord, RunStatus, SandboxSpec

from ._protocols import RunStoreLike
from ._runner import Outcome, Sandbox, launch
from ._secretreg import fetch_and_register, redact_like_audit

__all__ = ["RecordedRun", "record_refused", "start_recorded"]


class RecordedRun:
    """A launched sandbox whose end is written to the run store by ``wait()``."""

    def __init__(self, sandbox: Sandbox, store: RunStoreLike | None, clock: Clock) -> None:
        self.sandbox = sandbox
        self.run_id = sandbox.run_id
        self._store = store
        self._clock = clock
        self._record: RunRecord | None = None

    def wait(self, timeout: float | None = None) -> tuple[Outcome, RunRecord | None]:
        outcome = self.sandbox.wait(timeout)
        if self._store is not None and self._record is None:
            status = RunStatus.EXITED if outcome.status == RunStatus.EXITED else RunStatus.KILLED
            self._record = self._store.update(
                self.run_id,
                status=status,
                end_reason=outcome.end_reason,
                exit_code=outcome.exit_code,
                signal=outcome.signal,
                ended_at=self._clock.now(),
            )
            self._store.add_evidence(self.run_id, "sandbox.outcome", outcome.as_dict())
        return outcome, self._record

    def kill(self) -> None:
        self.sandbox.kill()


def start_recorded(
    spec: SandboxSpec,
    *,
    state: Path,
    clock: Clock,
    store: RunStoreLike | None = None,
    audit: AuditSink | None = None,
    secrets: Any = None,
    workload: str = "",
    kind: str = "job",
    server: str | None = None,
    policy_hash: str = "",
    stdin: int | IO[Any] | None = subprocess.DEVNULL,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
    protected: tuple[str, ...] = (),
    evidence: tuple[tuple[str, dict[str, Any]], ...] = (),
) -> RecordedRun:
    """Record the run (pending), launch it, mark it running; a refusal is recorded as refused.

    ``evidence`` (kind, data) is stored with the run before launch (e.g. an image's verification).
    """
    run_id = uuid.uuid4().hex
    spec_json = spec.model_dump(mode="json")
    if store is not None:
        store.create(
            RunRecord(
                run_id=run_id,
                workload=workload or " ".join(spec.argv),
                kind=kind,
                server=server,
                backend=spec.runtime.value,
                policy_hash=policy_hash,
                image_digest=spec.image_digest,
                spec=spec_json,
                network_profile=spec.network.model_dump(mode="json"),
                status=RunStatus.PENDING,
                created_at=clock.now(),
            )
        )
    try:
        # Before any event about the run: its secret values go to the redactor.
        secrets = fetch_and_register(spec, secrets, audit)
        if store is not None:
            for kind_, data in evidence:
                store.add_evidence(run_id, kind_, redact_like_audit(audit, data))
        if audit is not None:
            for kind_, data in evidence:
                audit.append(f"run.{kind_}", data, run_id=run_id)
        sb = launch(
            spec, state=state, run_id=run_id, secrets=secrets, audit=audit,
            stdin=stdin, stdout=stdout, stderr=stderr, protected=protected,
        )  # fmt: skip
    except SandboxError as e:
        if store is not None:
            store.update(
                run_id, status=RunStatus.REFUSED, end_reason=EndReason.REFUSED,
                ended_at=clock.now(),
            )  # fmt: skip
            store.add_evidence(run_id, "sandbox.refused", {"what": e.what, "fix": e.fix})
        raise
    if store is not None:
        store.update(run_id, status=RunStatus.RUNNING, started_at=clock.now())
        if spec.runtime.value == "namespaces":
            store.add_evidence(
                run_id, "sandbox.waiver", {"gvisor_waived": True, "runtime": "namespaces"}
            )
    return RecordedRun(sb, store, clock)


def record_refused(
    err: StockadeError,
    *,
    clock: Clock,
    store: RunStoreLike | None,
    audit: AuditSink | None,
    workload: str,
    kind: str = "job",
    server: str | None = None,
    policy_hash: str = "",
    image_digest: str | None = None,
    evidence: tuple[tuple[str, dict[str, Any]], ...] = (),
    backend: str = "gvisor",
) -> str:
    """Record a run refused before any sandbox existed (e.g. an image that did not verify) on
    ``backend`` (the one the run was meant for: ``gvisor`` locally, ``kubernetes`` as a Pod)."""
    run_id = uuid.uuid4().hex
    now = clock.now()
    reason = {"what": err.what, "fix": err.fix, "error": type(err).__name__}
    if store is not None:
        store.create(
            RunRecord(
                run_id=run_id, workload=workload, kind=kind, server=server, backend=backend,
                policy_hash=policy_hash, image_digest=image_digest, status=RunStatus.REFUSED,
                end_reason=EndReason.REFUSED, created_at=now, ended_at=now,
            )
        )  # fmt: skip
        for kind_, data in evidence:
            store.add_evidence(run_id, kind_, data)
        store.add_evidence(run_id, "sandbox.refused", reason)
    if audit is not None:
        audit.append("sandbox.refused", {"workload": workload, **reason}, run_id=run_id)
    return run_id
