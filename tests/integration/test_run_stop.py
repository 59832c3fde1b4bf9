"""End to end: an operator's stop request through the API app stops a real gVisor run.

The API records ``stop_requested`` (and revokes the run's tokens); the run's monitor polls the store
through ``StoreStopCheck`` in the loop that enforces the CPU budget and kills the sandbox with end
reason ``killed_by_operator``, recording who asked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from stockade.api import (
    ControlPlane,
    RecordingStopper,
    StoreRevocations,
    StoreStopCheck,
    build_app,
    with_peer,
)
from stockade.identity import PeerIdentity, Role, TokenAuthority
from stockade.models import EndReason, RunRecord, RunStatus, SandboxSpec
from stockade.sandbox import launch
from stockade.store import RunStore

pytestmark = [pytest.mark.gvisor, pytest.mark.slow]

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class _Clock:
    def now(self) -> datetime:
        return T0


def _need_gvisor() -> None:
    if shutil.which("runsc") is None or os.geteuid() != 0:
        pytest.skip("GVISOR MISSING: needs runsc and root; run scripts/bootstrap as root")


@pytest.mark.guarantee("cp-run-stop")
def test_a_stop_requested_through_the_api_kills_a_gvisor_run_and_names_who_asked(
    tmp_path: Path,
) -> None:
    _need_gvisor()

    def open_store() -> RunStore:
        return RunStore.open(tmp_path / "runs.db")

    spec = SandboxSpec(argv=("/bin/sleep", "600"), cpu_seconds=30, timeout_s=300)
    sb = launch(
        spec, state=tmp_path / "state", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        with open_store() as s:
            s.create(
                RunRecord(
                    run_id=sb.run_id,
                    workload="/bin/sleep 600",
                    backend="gvisor",
                    policy_hash="sha256:" + "a" * 64,
                    created_at=T0,
                )
            )
        sb.watch_stop(StoreStopCheck(open_store, sb.run_id))
        clock = _Clock()
        revocations = StoreRevocations(open_store, clock)
        cp = ControlPlane(
            open_store=open_store,
            clock=clock,
            stopper=RecordingStopper(open_store, revocations),
            policy_hash="sha256:" + "a" * 64,
            tokens=TokenAuthority(b"t" * 32, clock, revocations),
            readiness={"store": lambda: "ok"},
        )
        carol = PeerIdentity(
            name="carol", role=Role.OPERATOR, serial=7, not_after=T0 + timedelta(days=1)
        )
        client = TestClient(with_peer(build_app(cp), carol), base_url="https://testserver")
        r = client.post(f"/v1/runs/{sb.run_id}/stop")
        assert r.status_code == 202, r.text
        outcome = sb.wait(timeout=60)  # bounded: the monitor polls every STOP_POLL_S
    finally:
        sb.kill()
        sb.wait(timeout=60)
    assert outcome.end_reason == EndReason.KILLED_BY_OPERATOR
    assert outcome.status == RunStatus.KILLED
    assert outcome.stopped_by == "operator:carol"
    assert outcome.as_dict()["stopped_by"] == "operator:carol"


def test_a_stop_check_names_nobody_until_a_stop_is_recorded(tmp_path: Path) -> None:
    def open_store() -> RunStore:
        return RunStore.open(tmp_path / "runs.db")

    with open_store() as s:
        s.create(
            RunRecord(
                run_id="r1",
                workload="x",
                backend="gvisor",
                policy_hash="sha256:" + "a" * 64,
                created_at=T0,
            )
        )
    check = StoreStopCheck(open_store, "r1")
    assert check() is None
    with open_store() as s:
        s.add_evidence("r1", "stop_requested", {"by": "dave"})
        s.add_evidence("r1", "stop_requested", {"by": "erin"})
    assert check() == "dave"
