"""The npm installer the demo and the tests share: a pinned release present is used as is, any other
installed version asks npm again, and no npm is a clear refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stockade.cli._demo_gateway import EVERYTHING_ENTRY, EVERYTHING_PACKAGE, npm_install
from stockade.errors import SandboxError

NAME, _, VERSION = EVERYTHING_PACKAGE.rpartition("@")


def _fake_install(prefix: Path, version: str) -> Path:
    entry = prefix / EVERYTHING_ENTRY
    entry.parent.mkdir(parents=True)
    entry.write_text("// entry\n")
    meta = prefix / "node_modules" / NAME / "package.json"
    meta.write_text(json.dumps({"name": NAME, "version": version}))
    return entry


def test_the_pinned_release_already_installed_is_used_without_asking_npm(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _fake_install(tmp_path, VERSION)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert npm_install(tmp_path, EVERYTHING_PACKAGE, EVERYTHING_ENTRY) == entry


def test_another_installed_version_is_not_taken_for_the_pinned_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_install(tmp_path, "0.0.1")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(SandboxError, match="npm is not installed"):
        npm_install(tmp_path, EVERYTHING_PACKAGE, EVERYTHING_ENTRY)


def test_a_version_range_only_asks_for_presence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    entry = _fake_install(tmp_path, "2030.1.1")
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    assert npm_install(tmp_path, f"{NAME}@2030", EVERYTHING_ENTRY) == entry
