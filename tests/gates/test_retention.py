"""Audit retention: rotation into sealed, verifiable archives; appenders carry on; pruning."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest

from stockade.audit import AuditLog, Checkpoint, load_keys, verify_file
from stockade.gates import GateError, prune_archives, rotate_audit_log

from .conftest import StepClock, World


@pytest.mark.guarantee("cp-audit-retention")
def test_rotation_archives_a_sealed_log_that_verifies_against_its_seal(
    world: World, tmp_path: Path
) -> None:
    archive = tmp_path / "archive"
    key_dir = world.inputs.audit.key_dir
    writer = AuditLog.open_existing(world.log, key_dir, clock=StepClock())  # open across rotation
    seal = rotate_audit_log(world.log, key_dir, archive, StepClock())
    archived = archive / seal.file
    assert stat.S_IMODE(archived.stat().st_mode) == 0o400
    pub = load_keys(key_dir).public_key
    report = verify_file(archived, public_key=pub, expect_head=Checkpoint.model_validate(seal.head))
    assert report.ok
    assert report.unsealed == 0
    assert report.events == seal.events
    # the live log restarted with a link to the archive, and an appender opened before the
    # rotation follows the path into the new chain
    writer.append("tool_call", {"tool": "after"}, run_id="r1")
    writer.close()
    fresh = verify_file(world.log, public_key=pub)
    assert fresh.ok
    lines = [json.loads(x) for x in world.log.read_text().splitlines()]
    assert lines[0]["type"] == "audit_rotated"
    assert lines[0]["data"]["archive"] == seal.file
    assert any(x["data"].get("tool") == "after" for x in lines)
    assert archived.read_bytes().count(b'"after"') == 0


def test_a_tampered_log_is_not_archived(world: World, tmp_path: Path) -> None:
    data = world.log.read_bytes().replace(b"fetch", b"fetcH", 1)
    world.log.write_bytes(data)
    with pytest.raises(GateError, match="fails verification"):
        rotate_audit_log(world.log, world.inputs.audit.key_dir, tmp_path / "a", StepClock())
    assert world.log.exists()


@pytest.mark.guarantee("cp-audit-retention")
def test_archives_older_than_the_retention_period_are_pruned(world: World, tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    clock = StepClock()
    old = rotate_audit_log(world.log, world.inputs.audit.key_dir, archive, clock)
    assert prune_archives(archive, timedelta(days=30), clock) == []
    later = StepClock()
    later._t = clock.now() + timedelta(days=31)
    new = rotate_audit_log(world.log, world.inputs.audit.key_dir, archive, later)
    assert prune_archives(archive, timedelta(days=30), later) == [old.file]
    assert sorted(p.name for p in archive.iterdir()) == sorted([new.file, f"{new.file}.seal.json"])
    with pytest.raises(GateError):
        prune_archives(archive, timedelta(0), later)
