"""Watch an applied run's Pod to its end: the core of ``stockade run --backend kubernetes``.

:func:`supervise` polls the Pod through a :class:`PodApi` (a :class:`ClusterApi` that can also
read a container's log), maps each observation with :func:`pod_outcome`, enforces the run's
deadline with the injected :class:`Clock` (the Pod is deleted and the end reason is
``deadline``), collects the bounded log tail, and deletes every object the run created — also
when anything in between raises (including ``KeyboardInterrupt``). Waiting is injected too
(``wait(seconds)``), so the loop is exercised without sleeps against
:class:`stockade.testing.FakeCluster`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from stockade.models import Clock, EndReason, RunStatus

from ._cluster import ClusterApi, ObjRef
from ._errors import KubeError
from ._outcome import PodOutcome, pod_outcome

__all__ = ["LOG_LIMIT_BYTES", "PodApi", "Supervised", "supervise"]

#: At most this much of the server container's log is kept in the run record.
LOG_LIMIT_BYTES = 64 * 1024
#: Seconds between two reads of the Pod (never past the deadline).
_POLL_S = 1.0


class PodApi(ClusterApi, Protocol):
    def pod_log(self, ref: ObjRef, container: str, limit_bytes: int) -> str:
        """The tail of ``container``'s log (at most ``limit_bytes``); raises KubeError."""
        ...


@dataclass(frozen=True)
class Supervised:
    """How the run ended, what it printed, and what cleanup did."""

    outcome: PodOutcome
    log: str
    deleted: tuple[ObjRef, ...]
    cleanup_failures: tuple[str, ...]

    @property
    def status(self) -> RunStatus:
        return self.outcome.status


def _deleted_order(created: Sequence[ObjRef]) -> list[ObjRef]:
    # The Pod first (stop the workload), then the rest in reverse creation order.
    pods = [r for r in created if r.kind == "Pod"]
    rest = [r for r in reversed(created) if r.kind != "Pod"]
    return pods + rest


def _cleanup(api: PodApi, created: Sequence[ObjRef]) -> tuple[list[ObjRef], list[str]]:
    deleted: list[ObjRef] = []
    failures: list[str] = []
    for ref in _deleted_order(created):
        try:
            if api.get(ref) is not None:
                api.delete(ref)
                deleted.append(ref)
        except KubeError as e:  # keep going: every other object still has to go
            failures.append(f"{ref}: {e.what}")
    return deleted, failures


def _log(api: PodApi, pod: ObjRef) -> str:
    try:
        text = api.pod_log(pod, "server", LOG_LIMIT_BYTES)
    except KubeError as e:
        return f"(log unavailable: {e.what})"
    return text[-LOG_LIMIT_BYTES:]


def supervise(
    api: PodApi,
    pod: ObjRef,
    *,
    created: Sequence[ObjRef],
    deadline: datetime,
    clock: Clock,
    wait: Callable[[float], None],
    keep: bool = False,
) -> Supervised:
    """Poll ``pod`` until it ends or ``deadline`` passes, then collect its log and delete
    ``created`` (unless ``keep``). Cleanup runs on every exit path; a failed delete is reported
    in ``cleanup_failures`` (and raised as :class:`KubeError` when the run itself succeeded).
    """
    try:
        outcome = _watch(api, pod, deadline=deadline, clock=clock, wait=wait)
        log = _log(api, pod)
    finally:
        deleted, failures = ([], []) if keep else _cleanup(api, created)
    if failures and outcome.status in (RunStatus.EXITED, RunStatus.RUNNING):
        raise KubeError(
            "the run ended but cleanup failed: " + "; ".join(failures),
            "delete the named objects by hand (kubectl delete) or with stockade k8s rollback",
        )
    return Supervised(outcome, log, tuple(deleted), tuple(failures))


def _watch(
    api: PodApi, pod: ObjRef, *, deadline: datetime, clock: Clock, wait: Callable[[float], None]
) -> PodOutcome:
    while True:
        outcome = pod_outcome(api.get(pod))
        if outcome.ended:
            return outcome
        now = clock.now()
        if now >= deadline:
            api.delete(pod)
            return PodOutcome(
                RunStatus.KILLED,
                EndReason.DEADLINE,
                None,
                f"deadline passed while {outcome.detail}; the Pod was deleted",
            )
        left = (deadline - now) / timedelta(seconds=1)
        wait(min(_POLL_S, max(left, 0.0)))
