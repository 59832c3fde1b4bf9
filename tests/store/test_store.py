from __future__ import annotations

import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stockade.errors import NotFoundError, StoreError
from stockade.models import EndReason, RunRecord, RunStatus
from stockade.store import SCHEMA_VERSION, RunStore

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def record(run_id: str = "r1", **kw: object) -> RunRecord:
    base: dict[str, object] = {
        "run_id": run_id,
        "workload": "python3 -c pass",
        "backend": "gvisor",
        "policy_hash": "sha256:" + "a" * 64,
        "spec": {"memory_mb": 64},
        "network_profile": {"mode": "none"},
        "created_at": T0,
    }
    base.update(kw)
    return RunRecord.model_validate(base)


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore.open(tmp_path / "state" / "runs.db")
    yield s  # type: ignore[misc]
    s.close()


def test_a_created_run_reads_back_equal(store: RunStore) -> None:
    r = record()
    store.create(r)
    assert store.get("r1") == r


def test_store_file_is_private_to_its_owner(store: RunStore) -> None:
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.path.parent.stat().st_mode) == 0o700


def test_update_changes_only_named_fields_and_validates(store: RunStore) -> None:
    store.create(record())
    end = T0 + timedelta(seconds=3)
    r = store.update(
        "r1", status=RunStatus.EXITED, end_reason=EndReason.DEADLINE, exit_code=137, ended_at=end
    )
    assert store.get("r1") == r
    assert r.workload == "python3 -c pass"
    assert r.end_reason is EndReason.DEADLINE
    with pytest.raises(StoreError, match="invalid update"):
        store.update("r1", status="not-a-status")
    with pytest.raises(StoreError, match="cannot update run fields"):
        store.update("r1", run_id="other")
    assert store.get("r1") == r


def test_duplicate_run_id_is_refused(store: RunStore) -> None:
    store.create(record())
    with pytest.raises(StoreError, match="already exists"):
        store.create(record())


def test_missing_run_is_not_found_with_a_hint(store: RunStore) -> None:
    with pytest.raises(NotFoundError) as e:
        store.get("nope")
    assert "stockade runs" in e.value.fix
    with pytest.raises(NotFoundError):
        store.add_evidence("nope", "decision", {})


def test_list_is_newest_first_and_filters_by_status(store: RunStore) -> None:
    for i in range(3):
        store.create(record(f"r{i}", created_at=T0 + timedelta(minutes=i)))
    store.update("r1", status=RunStatus.KILLED)
    assert [r.run_id for r in store.list()] == ["r2", "r1", "r0"]
    assert [r.run_id for r in store.list(status=RunStatus.KILLED)] == ["r1"]
    assert [r.run_id for r in store.list(limit=1)] == ["r2"]


def test_trace_groups_evidence_in_order(store: RunStore) -> None:
    store.create(record())
    store.add_evidence("r1", "verification", {"key": "k1"}, ts=T0)
    store.add_evidence("r1", "decision", {"kind": "allow"}, ts=T0)
    store.add_evidence("r1", "decision", {"kind": "deny"}, ts=T0)
    store.add_evidence("r1", "started", {}, ts=T0)
    t = store.trace("r1")
    assert [d.data["kind"] for d in t.decisions] == ["allow", "deny"]
    assert t.verification[0].data == {"key": "k1"}
    assert [e.kind for e in t.events] == ["started"]
    assert t.gvisor_waived is False


@pytest.mark.guarantee("trace-marks-waived-gvisor")
def test_trace_marks_a_namespaces_run_as_waiving_gvisor(store: RunStore) -> None:
    store.create(record(backend="namespaces"))
    assert store.trace("r1").gvisor_waived is True


def test_naive_timestamps_are_refused(store: RunStore) -> None:
    store.create(record())
    with pytest.raises(StoreError, match="naive timestamp"):
        store.add_evidence("r1", "x", {}, ts=datetime(2026, 1, 1))


def test_schema_is_migrated_on_open_and_reopening_keeps_data(tmp_path: Path) -> None:
    p = tmp_path / "runs.db"
    with RunStore.open(p) as s:
        assert s.schema_version == SCHEMA_VERSION
        s.create(record())
    with RunStore.open(p) as s:
        assert s.get("r1").run_id == "r1"


@pytest.mark.guarantee("store-refuses-newer-schema")
def test_a_store_from_a_newer_schema_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "runs.db"
    RunStore.open(p).close()
    with sqlite3.connect(p) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="schema version") as e:
        RunStore.open(p)
    assert "upgrade stockade" in e.value.fix


@pytest.mark.guarantee("store-refuses-corrupt-db")
def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "runs.db"
    p.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="not a usable SQLite database"):
        RunStore.open(p)


def test_a_symlinked_store_path_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere.db"
    target.write_bytes(b"")
    link = tmp_path / "runs.db"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="cannot open the run store"):
        RunStore.open(link)


@pytest.mark.guarantee("store-open-keeps-locks")
def test_opening_the_store_again_keeps_the_locks_of_an_open_connection(tmp_path: Path) -> None:
    import subprocess
    import sys

    p = tmp_path / "runs.db"
    first = RunStore.open(p)
    first.list()  # the connection is live and holds SQLite's locks on the file
    probe = (
        "import fcntl,os,sys\n"
        "fd=os.open(sys.argv[1], os.O_RDWR)\n"
        "try:\n    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)\n"
        "except OSError:\n    print('locked')\nelse:\n    print('GOT THE LOCK')\n"
    )

    def probe_lock() -> str:
        return subprocess.run(
            [sys.executable, "-c", probe, str(p)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout.strip()

    try:
        before = probe_lock()
        RunStore.open(p).close()  # the same process opens (and closes) the store again
        assert probe_lock() == before == "locked"
    finally:
        first.close()
