"""The admission package exposes a curated API and nothing by accident."""

from __future__ import annotations

import ast
from pathlib import Path

from stockade import admission
from stockade.admission import CHECKS, Level, check_ids

PACKAGE = Path(admission.__file__).parent


def test_all_is_sorted_and_every_name_exists() -> None:
    assert admission.__all__ == sorted(admission.__all__, key=lambda n: (not n.isupper(), n))
    for name in admission.__all__:
        assert hasattr(admission, name), name


def test_modules_are_private() -> None:
    assert all(p.name.startswith("_") for p in PACKAGE.glob("*.py"))


def test_the_core_does_no_io() -> None:
    """Only the loader touches text; no module opens files, sockets, subprocesses or clocks."""
    forbidden = {"open", "subprocess", "socket", "time", "datetime", "os", "pathlib", "urllib"}
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden, path.name
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in forbidden, path.name
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "open", path.name


def test_the_check_ids_are_those_of_kubernetes_plus_stockade() -> None:
    pss = {c.id for c in CHECKS if c.level is not Level.STOCKADE}
    assert pss == {
        "allowPrivilegeEscalation",
        "appArmorProfile",
        "capabilities_baseline",
        "capabilities_restricted",
        "hostNamespaces",
        "hostPathVolumes",
        "hostPorts",
        "hostProbesAndHostLifecycle",
        "privileged",
        "procMount",
        "procMount_restricted",
        "restrictedVolumes",
        "runAsNonRoot",
        "runAsUser",
        "seLinuxOptions",
        "seccompProfile_baseline",
        "seccompProfile_restricted",
        "sysctls",
        "windowsHostProcess",
    }
    assert len(set(check_ids())) == len(check_ids())
    assert all(c.id.startswith("stockade_") for c in CHECKS if c.level is Level.STOCKADE)


def test_overrides_name_only_baseline_checks_and_only_from_restricted() -> None:
    by_id = {c.id: c for c in CHECKS}
    for c in CHECKS:
        for o in c.overrides:
            assert c.level is Level.RESTRICTED
            assert by_id[o].level is Level.BASELINE
