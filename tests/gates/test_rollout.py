"""Policy apply (dry run by default), rollback to the previous version, and the rollback drill."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.cli import main
from stockade.errors import PolicyError
from stockade.gates import (
    apply_policy,
    drill_rollback,
    plan_apply,
    policy_history,
    rollback_policy,
)
from stockade.policy import load_policy
from stockade.store import RunStore

from .conftest import StepClock

V1 = "version: 1\ndefault: deny\n"
V2 = 'version: 1\ndefault: deny\nregistries: ["registry.example.com/team/*"]\n'
V3_BAD = "version: 1\ndefault: allow\nbogus: 1\n"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore.open(tmp_path / "runs.db") as s:
        yield s


def _file(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.guarantee("cp-policy-rollback")
def test_apply_then_rollback_restores_the_previous_version(store: RunStore, tmp_path: Path) -> None:
    active = _file(tmp_path, "active.yaml", V1)
    h1 = load_policy(active).effective_hash
    cand = _file(tmp_path, "cand.yaml", V2)
    plan = plan_apply(store, cand)
    assert plan.changed
    assert plan.recorded is None
    v = apply_policy(store, cand, active, by="t", clock=StepClock())
    assert active.read_text() == V2
    assert v.hash == load_policy(cand).effective_hash != h1
    r = rollback_policy(store, active, by="t", clock=StepClock())
    assert active.read_text() == V1
    assert r.hash == h1
    assert [x.hash for x in policy_history(store)] == [h1, v.hash, h1]


def test_an_invalid_candidate_is_not_installed(store: RunStore, tmp_path: Path) -> None:
    active = _file(tmp_path, "active.yaml", V1)
    bad = _file(tmp_path, "bad.yaml", V3_BAD)
    with pytest.raises(PolicyError):
        apply_policy(store, bad, active, by="t", clock=StepClock())
    assert active.read_text() == V1
    assert not list(tmp_path.glob(".active.yaml.new"))


def test_rollback_without_an_earlier_version_is_refused(store: RunStore, tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no policy version"):
        rollback_policy(store, tmp_path / "active.yaml", by="t", clock=StepClock())


def test_the_rollback_drill_restores_and_reports_time_against_the_target(
    store: RunStore, tmp_path: Path
) -> None:
    active = _file(tmp_path, "active.yaml", V1)
    cand = _file(tmp_path, "cand.yaml", V2)
    ticks = iter([10.0, 10.25])
    r = drill_rollback(
        store, cand, active, by="t", clock=StepClock(), rto_seconds=1, timer=lambda: next(ticks)
    )
    assert (r.ok, r.seconds) == (True, 0.25)
    assert active.read_text() == V1
    slow = iter([0.0, 5.0])
    r2 = drill_rollback(
        store, cand, active, by="t", clock=StepClock(), rto_seconds=1, timer=lambda: next(slow)
    )
    assert not r2.ok


def test_policy_apply_is_a_dry_run_unless_told_otherwise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path))
    active = _file(tmp_path, "active.yaml", V1)
    cand = _file(tmp_path, "cand.yaml", V2)
    main(["policy", "apply", str(cand), "--to", str(active)])
    assert "dry run" in capsys.readouterr().out
    assert active.read_text() == V1
    main(["policy", "apply", str(cand), "--to", str(active), "--yes"])
    assert active.read_text() == V2
    main(["policy", "rollback", "--to", str(active), "--yes"])
    assert active.read_text() == V1
    main(["drill", "rollback", "--policy", str(active), "--candidate", str(cand)])  # exits on FAIL
    assert "PASS rollback drill" in capsys.readouterr().out
