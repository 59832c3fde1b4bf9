"""One Kubernetes run end to end: apply (preflight refusals first) -> watch to the end or the
deadline -> log -> undo exactly what the apply did (the rollback record), on every exit path.

The I/O is the injected :class:`PodApi`, the time the injected :class:`Clock` and ``wait``; the
caller (the CLI) turns the :class:`KubeRun` into a run record and evidence.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import BinaryIO

from stockade.models import AuditSink, Clock, RunStatus

from ._apply import ApplyResult, RollbackResult, apply_run, rollback_run
from ._attach import AttachApi, Pumped, pump
from ._cluster import ObjRef, ref_of
from ._errors import KubeError
from ._outcome import PodOutcome, pod_outcome
from ._records import RecordStore
from ._render import Manifest
from ._rollback import RollbackRecord
from ._supervise import PodApi, Supervised, supervise

__all__ = ["KubeRun", "run_pod", "run_pod_attached", "wait_running"]

_POLL_S = 1.0


@dataclass(frozen=True)
class KubeRun:
    applied: ApplyResult
    supervised: Supervised
    cleanup: RollbackResult


def _pod_ref(desired: tuple[Manifest, ...]) -> ObjRef:
    pods = [ref_of(o) for o in desired if o["kind"] == "Pod"]
    if len(pods) != 1:
        raise KubeError(f"the render has {len(pods)} Pods, expected 1", "render the run again")
    return pods[0]


def _apply_for_run(
    api: PodApi,
    desired: tuple[Manifest, ...],
    *,
    store: RecordStore,
    clock: Clock,
    server: str,
    run_id: str,
    timeout_s: float,
    audit: AuditSink | None,
    unsafe_assume_networkpolicy: bool,
) -> tuple[ObjRef, ApplyResult, RollbackRecord, datetime]:
    """The first half of every run: check the timeout, apply (preflight refusals first) and
    return the Pod, the apply, its rollback record and the run's deadline."""
    if not timeout_s > 0:
        raise KubeError(f"run timeout {timeout_s!r} s, expected > 0", "set a timeout")
    pod = _pod_ref(desired)
    applied = apply_run(
        api,
        desired,
        execute=True,
        store=store,
        clock=clock,
        server=server,
        run_id=run_id,
        unsafe_assume_networkpolicy=unsafe_assume_networkpolicy,
        audit=audit,
    )
    record = applied.record
    if record is None:  # apply_run(execute=True) always records; fail closed if it did not
        raise KubeError("the apply returned no rollback record", "report this as a bug")
    return pod, applied, record, clock.now() + timedelta(seconds=timeout_s)


def run_pod(
    api: PodApi,
    desired: tuple[Manifest, ...],
    *,
    store: RecordStore,
    clock: Clock,
    wait: Callable[[float], None],
    server: str,
    run_id: str,
    timeout_s: float,
    audit: AuditSink | None = None,
    unsafe_assume_networkpolicy: bool = False,
) -> KubeRun:
    """Refused (``PreflightError``) before any write when the cluster lacks gVisor, restricted
    Pod Security or NetworkPolicy enforcement. Once anything was written, the rollback record
    is executed however the watch ends (exit, deadline, API error, ``KeyboardInterrupt``)."""
    pod, applied, record, deadline = _apply_for_run(
        api, desired, store=store, clock=clock, server=server, run_id=run_id,
        timeout_s=timeout_s, audit=audit, unsafe_assume_networkpolicy=unsafe_assume_networkpolicy,
    )  # fmt: skip
    try:
        supervised = supervise(
            api, pod, created=(), deadline=deadline, clock=clock, wait=wait, keep=True
        )
    finally:
        cleanup = rollback_run(api, record, execute=True, audit=audit)
    return KubeRun(applied, supervised, cleanup)


def wait_running(
    api: PodApi,
    pod: ObjRef,
    *,
    deadline: datetime,
    clock: Clock,
    wait: Callable[[float], None],
) -> PodOutcome:
    """Poll until the Pod is Running, has ended, or ``deadline`` passed; the last observation."""
    while True:
        out = pod_outcome(api.get(pod))
        now = clock.now()
        if out.status == RunStatus.RUNNING or out.ended or now >= deadline:
            return out
        wait(min(_POLL_S, (deadline - now) / timedelta(seconds=1)))


def run_pod_attached(
    api: AttachApi,
    desired: tuple[Manifest, ...],
    *,
    stdin: BinaryIO | None,
    stdout: BinaryIO,
    store: RecordStore,
    clock: Clock,
    wait: Callable[[float], None],
    server: str,
    run_id: str,
    timeout_s: float,
    audit: AuditSink | None = None,
    unsafe_assume_networkpolicy: bool = False,
) -> tuple[KubeRun, Pumped | None]:
    """:func:`run_pod` with the caller's stdin/stdout attached to the Pod's while it runs
    (``stockade run --backend kubernetes -i``). The pump stops at the run's deadline; the watch
    then ends the run (deleting a Pod still alive at the deadline) and the rollback record
    undoes the apply, on every exit path. ``None`` for the pump when the Pod never ran."""
    pod, applied, record, deadline = _apply_for_run(
        api, desired, store=store, clock=clock, server=server, run_id=run_id,
        timeout_s=timeout_s, audit=audit, unsafe_assume_networkpolicy=unsafe_assume_networkpolicy,
    )  # fmt: skip
    pumped: Pumped | None = None
    try:
        first = wait_running(api, pod, deadline=deadline, clock=clock, wait=wait)
        if first.status == RunStatus.RUNNING:
            stream = api.attach(pod.namespace, pod.name)
            pumped = pump(
                stream, stdin=stdin, stdout=stdout, expired=lambda: clock.now() >= deadline
            )
        supervised = supervise(
            api, pod, created=(), deadline=deadline, clock=clock, wait=wait, keep=True
        )
    finally:
        cleanup = rollback_run(api, record, execute=True, audit=audit)
    return KubeRun(applied, supervised, cleanup), pumped
