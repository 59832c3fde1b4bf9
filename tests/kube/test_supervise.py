"""Watching a run's Pod to its end against the in-memory FakeCluster: phases, deadline, logs,
deletion of everything the run created (also when interrupted)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stockade.kube import (
    LOG_LIMIT_BYTES,
    KubeError,
    Manifest,
    ObjRef,
    Supervised,
    ref_of,
    supervise,
)
from stockade.models import EndReason, RunStatus
from stockade.testing import FakeClock, FakeCluster

from ._helpers import objs_of

MAX_STEPS = 1000  # every wait is bounded: a runaway loop fails the test instead of hanging


def running() -> Manifest:
    return {"phase": "Running", "containerStatuses": [{"name": "server", "state": {"running": {}}}]}


def pending(reason: str = "") -> Manifest:
    state: dict[str, Any] = {"waiting": {"reason": reason}} if reason else {}
    return {"phase": "Pending", "containerStatuses": [{"name": "server", "state": state}]}


def exited(code: int, reason: str = "Completed") -> Manifest:
    term = {"exitCode": code, "reason": reason}
    return {
        "phase": "Succeeded" if code == 0 else "Failed",
        "containerStatuses": [{"name": "server", "state": {"terminated": term}}],
    }


class Setup:
    def __init__(self, *statuses: Manifest, deadline_s: float = 30) -> None:
        self.cluster = FakeCluster()
        self.clock = FakeClock()
        self.created: list[ObjRef] = []
        for obj in objs_of():
            self.cluster.create(obj)
            self.created.append(ref_of(obj))
        (self.pod,) = [r for r in self.created if r.kind == "Pod"]
        self.cluster.script[self.pod] = list(statuses)
        self.cluster.step()  # the first status is what the first read sees
        self.deadline = self.clock.now() + timedelta(seconds=deadline_s)
        self.waits: list[float] = []

    def wait(self, seconds: float) -> None:
        assert len(self.waits) < MAX_STEPS, "supervise never ended"
        assert seconds >= 0
        self.waits.append(seconds)
        self.clock.advance(seconds)
        self.cluster.step()

    def run(self, **kw: Any) -> Supervised:
        return supervise(
            self.cluster,
            self.pod,
            created=self.created,
            deadline=self.deadline,
            clock=self.clock,
            wait=self.wait,
            **kw,
        )


def test_a_pod_that_runs_then_exits_records_its_exit_code_and_log_and_is_deleted() -> None:
    s = Setup(pending(), running(), running(), exited(3, "Error"))
    s.cluster.logs[s.pod] = "hello from the server\n"
    got = s.run()
    assert got.status == RunStatus.EXITED
    assert got.outcome.end_reason == EndReason.EXITED
    assert got.outcome.exit_code == 3
    assert got.log == "hello from the server\n"
    assert s.cluster.objects == {}
    assert set(got.deleted) == set(s.created)
    assert got.deleted[0] == s.pod  # the workload stops first
    assert len(s.waits) == 3


@pytest.mark.guarantee("k8s-run-deadline")
def test_a_pod_still_running_at_the_deadline_is_deleted_and_ends_with_reason_deadline() -> None:
    s = Setup(*[running()] * 100, deadline_s=5)
    got = s.run()
    assert got.status == RunStatus.KILLED
    assert got.outcome.end_reason == EndReason.DEADLINE
    assert ("delete", s.pod) in s.cluster.calls
    assert s.cluster.objects == {}
    assert sum(s.waits) == pytest.approx(5)  # never waits past the deadline


@pytest.mark.guarantee("k8s-run-deadline")
def test_a_pod_stuck_pulling_its_image_is_ended_by_the_deadline() -> None:
    s = Setup(*[pending("ImagePullBackOff")] * 100, deadline_s=3)
    got = s.run()
    assert got.outcome.end_reason == EndReason.DEADLINE
    assert "ImagePullBackOff" in got.outcome.detail


def test_an_oom_killed_server_is_recorded_as_memory_limit() -> None:
    s = Setup(running(), exited(137, "OOMKilled"))
    got = s.run()
    assert got.status == RunStatus.KILLED
    assert got.outcome.end_reason == EndReason.MEMORY_LIMIT


def test_a_pod_deleted_by_someone_else_is_lost_and_the_rest_is_still_cleaned_up() -> None:
    s = Setup(running(), deadline_s=10)
    s.cluster.delete(s.pod)
    got = s.run()
    assert got.status == RunStatus.LOST
    assert got.log.startswith("(log unavailable")
    assert s.cluster.objects == {}


@pytest.mark.guarantee("k8s-run-cleanup")
def test_an_interrupt_while_watching_still_deletes_everything_the_run_created() -> None:
    s = Setup(*[running()] * 10)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        supervise(
            s.cluster,
            s.pod,
            created=s.created,
            deadline=s.deadline,
            clock=s.clock,
            wait=interrupted,
        )
    assert s.cluster.objects == {}


@pytest.mark.guarantee("k8s-run-cleanup")
def test_an_api_error_while_watching_still_deletes_everything_the_run_created() -> None:
    s = Setup(*[running()] * 10, deadline_s=1)
    s.cluster.fail_on.add(s.pod)  # the deadline's delete of the Pod fails
    with pytest.raises(KubeError):
        s.run()
    assert [r for r in s.cluster.objects if r.kind != "Pod"] == []


@pytest.mark.guarantee("k8s-run-cleanup")
def test_a_failed_cleanup_of_a_successful_run_is_an_error_naming_the_object() -> None:
    s = Setup(exited(0))
    (netpol,) = [r for r in s.created if r.kind == "NetworkPolicy"][:1]
    s.cluster.fail_on.add(netpol)
    with pytest.raises(KubeError) as e:
        s.run()
    assert str(netpol) in e.value.what


def test_keep_leaves_the_objects_for_inspection() -> None:
    s = Setup(exited(0))
    got = s.run(keep=True)
    assert got.deleted == ()
    assert s.pod in s.cluster.objects


def test_the_kept_log_is_bounded() -> None:
    s = Setup(exited(0))
    s.cluster.logs[s.pod] = "x" * (LOG_LIMIT_BYTES * 3)
    assert len(s.run().log) == LOG_LIMIT_BYTES
