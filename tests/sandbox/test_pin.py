"""Pinned host commands: any change to the package tree refuses the start."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.sandbox import tree_digest, verify_pin


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "pkg"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "server.py").write_text("print('hi')\n")
    (root / "bin").mkdir()
    (root / "bin" / "run").write_text("#!/bin/sh\n")
    (root / "bin" / "run").chmod(0o755)
    (root / "bin" / "alias").symlink_to("run")
    return root


def test_the_digest_is_stable_and_verification_passes_on_an_unchanged_tree(tree: Path) -> None:
    d = tree_digest(tree)
    assert d.startswith("sha256:")
    assert tree_digest(tree) == d
    verify_pin(tree, d)


@pytest.mark.guarantee("sandbox-pinned-command")
@pytest.mark.parametrize(
    "change",
    ["edit", "add", "remove", "chmod", "relink", "rename"],
)
def test_any_change_to_the_tree_refuses_the_start(tree: Path, change: str) -> None:
    d = tree_digest(tree)
    if change == "edit":
        (tree / "lib" / "server.py").write_text("print('pwned')\n")
    elif change == "add":
        (tree / "lib" / "evil.pth").write_text("import os\n")
    elif change == "remove":
        (tree / "bin" / "run").unlink()
    elif change == "chmod":
        (tree / "lib" / "server.py").chmod(0o777)
    elif change == "relink":
        (tree / "bin" / "alias").unlink()
        (tree / "bin" / "alias").symlink_to("/usr/bin/python3")
    else:
        (tree / "lib" / "server.py").rename(tree / "lib" / "server2.py")
    with pytest.raises(SandboxError, match="changed since it was approved"):
        verify_pin(tree, d)


@pytest.mark.guarantee("sandbox-pinned-command")
def test_special_files_in_a_pinned_tree_are_refused(tree: Path) -> None:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(tree / "lib" / "sock"))
        with pytest.raises(SandboxError, match="special file"):
            tree_digest(tree)
    finally:
        s.close()
        os.unlink(tree / "lib" / "sock")


@pytest.mark.guarantee("sandbox-pinned-command")
def test_launch_refuses_a_command_whose_pinned_tree_changed(tree: Path, tmp_path: Path) -> None:
    from stockade.models import SandboxSpec
    from stockade.sandbox import launch

    d = tree_digest(tree)
    (tree / "lib" / "server.py").write_text("changed\n")
    with pytest.raises(SandboxError, match="changed since it was approved"):
        launch(SandboxSpec(argv=("/bin/true",)), state=tmp_path / "st", pins=((str(tree), d),))
    assert not (tmp_path / "st" / "live").exists()
