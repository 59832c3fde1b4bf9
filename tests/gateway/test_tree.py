"""The package-tree hash that pins bind to."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.gateway import ConfigError, package_tree_hash


def tree(root: Path) -> Path:
    (root / "pkg" / "lib").mkdir(parents=True)
    (root / "pkg" / "index.js").write_text("console.log(1)\n")
    (root / "pkg" / "lib" / "a.js").write_text("module.exports = 1\n")
    return root / "pkg"


@pytest.mark.guarantee("gw-package-change-voids-pins")
def test_the_hash_is_stable_and_changes_with_any_file(tmp_path: Path) -> None:
    pkg = tree(tmp_path)
    first = package_tree_hash(pkg)
    assert first == package_tree_hash(pkg)
    assert first.startswith("tree:sha256:")
    (pkg / "lib" / "a.js").write_text("module.exports = 2\n")
    second = package_tree_hash(pkg)
    assert second != first
    (pkg / "lib" / "b.js").write_text("")
    assert package_tree_hash(pkg) != second


def test_renames_modes_and_symlink_targets_count(tmp_path: Path) -> None:
    pkg = tree(tmp_path)
    base = package_tree_hash(pkg)
    os.chmod(pkg / "index.js", 0o700)  # owner-executable: the x bit is hashed
    moded = package_tree_hash(pkg)
    assert moded != base
    (pkg / "link").symlink_to("/etc/passwd")
    linked = package_tree_hash(pkg)
    assert linked != moded
    (pkg / "link").unlink()
    (pkg / "link").symlink_to("/etc/hostname")
    assert package_tree_hash(pkg) != linked


def test_a_missing_tree_or_special_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        package_tree_hash(tmp_path / "absent")
    pkg = tree(tmp_path)
    os.mkfifo(pkg / "fifo")
    with pytest.raises(ConfigError):
        package_tree_hash(pkg)
