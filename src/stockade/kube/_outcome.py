"""What became of a run's Pod, in the run record's terms (pure): the building block of
``stockade run --backend kubernetes`` and of ``stockade k8s status``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stockade.models import EndReason, RunStatus

from ._render import Manifest

__all__ = ["PodOutcome", "pod_outcome"]

#: Waiting reasons that will not resolve by themselves (the deadline still ends the Pod).
STUCK = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
        "CrashLoopBackOff",
    }
)


@dataclass(frozen=True)
class PodOutcome:
    status: RunStatus
    end_reason: EndReason | None
    exit_code: int | None
    detail: str

    @property
    def ended(self) -> bool:
        return self.end_reason is not None


def _server_state(pod: Manifest) -> dict[str, Any]:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    for s in statuses:
        if s.get("name") == "server":
            state: dict[str, Any] = s.get("state") or {}
            return state
    return {}


def pod_outcome(pod: Manifest | None) -> PodOutcome:
    """Map the live Pod to a run status; an unknown or vanished Pod is ``lost`` (fail closed)."""
    if pod is None:
        return PodOutcome(RunStatus.LOST, EndReason.LOST, None, "the Pod no longer exists")
    status = pod.get("status") or {}
    phase, reason = status.get("phase", "Unknown"), status.get("reason", "")
    state = _server_state(pod)
    term = state.get("terminated")
    if reason == "DeadlineExceeded":
        return PodOutcome(
            RunStatus.KILLED, EndReason.DEADLINE, None, "activeDeadlineSeconds passed"
        )
    if reason == "Evicted":
        msg = str(status.get("message", ""))[:200]
        return PodOutcome(RunStatus.KILLED, EndReason.ERROR, None, f"evicted: {msg}")
    if term is not None:
        code = term.get("exitCode")
        code = code if isinstance(code, int) else None
        if term.get("reason") == "OOMKilled":
            return PodOutcome(RunStatus.KILLED, EndReason.MEMORY_LIMIT, code, "OOMKilled")
        return PodOutcome(RunStatus.EXITED, EndReason.EXITED, code, f"exited with {code}")
    if phase in ("Pending", "Running"):
        waiting = (state.get("waiting") or {}).get("reason", "")
        detail = f"{phase.lower()}" + (f" ({waiting})" if waiting else "")
        if waiting in STUCK:
            detail += ": will not start by itself; the deadline will end it"
        run_status = RunStatus.RUNNING if phase == "Running" else RunStatus.PENDING
        return PodOutcome(run_status, None, None, detail)
    if phase == "Failed":
        return PodOutcome(RunStatus.FAILED, EndReason.ERROR, None, f"failed: {reason or 'unknown'}")
    if phase == "Succeeded":
        return PodOutcome(RunStatus.EXITED, EndReason.EXITED, 0, "succeeded")
    return PodOutcome(RunStatus.LOST, EndReason.LOST, None, f"phase {phase!r}: node unreachable?")
