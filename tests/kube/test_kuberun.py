"""A whole Kubernetes run against the in-memory FakeCluster: preflight refusal before any write,
apply -> watch -> deadline -> log -> undo exactly what the apply did."""

from __future__ import annotations

from pathlib import Path

import pytest

from stockade.kube import (
    KubeRun,
    Manifest,
    PreflightError,
    RecordStore,
    ref_of,
    run_pod,
    runtime_class,
)
from stockade.models import EndReason, RunStatus
from stockade.testing import FakeClock, FakeCluster

from ._helpers import allowlist, objs_of, one, spec
from .test_supervise import exited, running

CALICO = {"kube-system": ("calico-node", "kube-proxy")}
MAX_STEPS = 1000


def desired() -> tuple[Manifest, ...]:
    return objs_of(spec(network=allowlist(), secrets=("API_TOKEN",)))


class Harness:
    def __init__(self, tmp: Path, *statuses: Manifest, healthy: bool = True) -> None:
        self.cluster = FakeCluster(daemonsets=dict(CALICO))
        if healthy:
            self.cluster.put(runtime_class())
        self.before = set(self.cluster.objects)
        self.clock = FakeClock()
        self.store = RecordStore(tmp / "rollback")
        self.objs = desired()
        self.pod = ref_of(one(self.objs, "Pod"))
        self.cluster.script[self.pod] = list(statuses)
        self.steps = 0

    def wait(self, seconds: float) -> None:
        self.steps += 1
        assert self.steps < MAX_STEPS, "the run never ended"
        self.clock.advance(seconds)
        self.cluster.step()

    def run(self, timeout_s: float = 30) -> KubeRun:
        return run_pod(
            self.cluster,
            self.objs,
            store=self.store,
            clock=self.clock,
            wait=self.wait,
            server="tool",
            run_id="r1",
            timeout_s=timeout_s,
        )


@pytest.mark.guarantee("k8s-run-cleanup")
def test_a_run_that_exits_is_recorded_and_leaves_the_cluster_as_it_found_it(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, running(), exited(0))
    h.cluster.logs[h.pod] = "done\n"
    got = h.run()
    assert got.supervised.status == RunStatus.EXITED
    assert got.supervised.outcome.exit_code == 0
    assert got.supervised.log == "done\n"
    assert got.cleanup.applied
    assert set(h.cluster.objects) == h.before


@pytest.mark.guarantee("k8s-run-deadline")
def test_a_run_past_its_timeout_is_killed_with_reason_deadline_and_cleaned_up(
    tmp_path: Path,
) -> None:
    h = Harness(tmp_path, *[running()] * 100)
    got = h.run(timeout_s=4)
    assert got.supervised.outcome.end_reason == EndReason.DEADLINE
    assert set(h.cluster.objects) == h.before


@pytest.mark.guarantee("k8s-preflight-refuse")
def test_a_cluster_without_gvisor_refuses_the_run_before_any_write(tmp_path: Path) -> None:
    h = Harness(tmp_path, exited(0), healthy=False)
    with pytest.raises(PreflightError):
        h.run()
    assert [op for op, _ in h.cluster.calls] == []
    assert set(h.cluster.objects) == h.before


@pytest.mark.guarantee("k8s-run-cleanup")
def test_ctrl_c_during_the_watch_still_undoes_the_apply(tmp_path: Path) -> None:
    h = Harness(tmp_path, *[running()] * 10)

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    h.wait = interrupted  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        h.run()
    assert set(h.cluster.objects) == h.before


def test_a_non_positive_timeout_is_refused_before_any_call(tmp_path: Path) -> None:
    h = Harness(tmp_path, exited(0))
    with pytest.raises(Exception, match="timeout"):
        h.run(timeout_s=0)
    assert h.cluster.calls == []
