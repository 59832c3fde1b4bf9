"""Evidence export: an offline-checkable folder, never carrying a secret."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from stockade.audit import load_public_key, verify_file
from stockade.gates import GateError, export_evidence

from .conftest import LEAKED, World


def test_evidence_folder_verifies_offline(world: World, tmp_path: Path) -> None:
    out = tmp_path / "evidence"
    manifest = export_evidence("r1", out, world.inputs)
    names = {p.name for p in out.iterdir()}
    assert names == {*manifest, "MANIFEST.json"}
    assert "hmac" not in " ".join(names)
    for name, digest in manifest.items():
        assert digest == "sha256:" + hashlib.sha256((out / name).read_bytes()).hexdigest()
    # an auditor needs only the folder: the copied log verifies with the exported public key
    report = verify_file(
        out / "audit.jsonl", public_key=load_public_key(out / "audit-public-key.pem")
    )
    assert report.ok
    assert json.loads((out / "checkpoint.json").read_text())["seq"] == report.head.seq  # type: ignore[union-attr]
    excerpt = [json.loads(x) for x in (out / "audit-excerpt.jsonl").read_text().splitlines()]
    assert {e.get("run_id") for e in excerpt if e["type"] != "checkpoint"} == {"r1"}
    assert json.loads((out / "trace.json").read_text())["run"]["run_id"] == "r1"


@pytest.mark.guarantee("cp-gate-secrets")
def test_evidence_carrying_a_secret_is_not_exported(world: World, tmp_path: Path) -> None:
    with world.inputs.open_store() as s:
        s.add_evidence("r1", "tool_call", {"result": LEAKED})
    out = tmp_path / "evidence"
    with pytest.raises(GateError, match="would carry"):
        export_evidence("r1", out, world.inputs)
    assert not out.exists()


def test_evidence_refuses_a_non_empty_folder(world: World, tmp_path: Path) -> None:
    (tmp_path / "ev").mkdir()
    (tmp_path / "ev" / "x").write_text("")
    with pytest.raises(GateError, match="not an empty directory"):
        export_evidence("r1", tmp_path / "ev", world.inputs)
