"""What became of a run's Pod, mapped to the run record's status and end reason."""

from __future__ import annotations

from typing import Any

import pytest

from stockade.kube import pod_outcome
from stockade.models import EndReason, RunStatus


def pod(phase: str, *, reason: str = "", state: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase}
    if reason:
        status["reason"] = reason
    if state is not None:
        status["containerStatuses"] = [{"name": "server", "state": state}]
    return {"status": status}


@pytest.mark.parametrize(
    ("obj", "status", "reason", "code"),
    [
        (None, RunStatus.LOST, EndReason.LOST, None),
        (pod("Pending"), RunStatus.PENDING, None, None),
        (pod("Running", state={"running": {}}), RunStatus.RUNNING, None, None),
        (pod("Failed", reason="DeadlineExceeded"), RunStatus.KILLED, EndReason.DEADLINE, None),
        (pod("Failed", reason="Evicted"), RunStatus.KILLED, EndReason.ERROR, None),
        (
            pod("Failed", state={"terminated": {"reason": "OOMKilled", "exitCode": 137}}),
            RunStatus.KILLED,
            EndReason.MEMORY_LIMIT,
            137,
        ),
        (
            pod("Failed", state={"terminated": {"reason": "Error", "exitCode": 3}}),
            RunStatus.EXITED,
            EndReason.EXITED,
            3,
        ),
        (
            pod("Succeeded", state={"terminated": {"reason": "Completed", "exitCode": 0}}),
            RunStatus.EXITED,
            EndReason.EXITED,
            0,
        ),
        (pod("Succeeded"), RunStatus.EXITED, EndReason.EXITED, 0),
        (pod("Failed"), RunStatus.FAILED, EndReason.ERROR, None),
        (pod("Unknown"), RunStatus.LOST, EndReason.LOST, None),
        ({}, RunStatus.LOST, EndReason.LOST, None),
    ],
    ids=[
        "gone",
        "pending",
        "running",
        "deadline",
        "evicted",
        "oom",
        "exit-3",
        "exit-0",
        "succeeded-no-status",
        "failed-unknown",
        "unknown-phase",
        "no-status",
    ],
)
def test_pod_states_map_to_run_statuses(
    obj: dict[str, Any] | None, status: RunStatus, reason: EndReason | None, code: int | None
) -> None:
    out = pod_outcome(obj)
    assert (out.status, out.end_reason, out.exit_code) == (status, reason, code)
    assert out.ended is (reason is not None)


def test_a_pod_that_cannot_start_is_flagged_as_stuck_not_ended() -> None:
    out = pod_outcome(pod("Pending", state={"waiting": {"reason": "ImagePullBackOff"}}))
    assert not out.ended
    assert "will not start by itself" in out.detail
