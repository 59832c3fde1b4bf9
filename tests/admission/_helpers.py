"""Builders for admission tests: a pod that passes restricted, one that passes stockade, and a
path setter so each table row is one field change."""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

from stockade.admission import AdmissionResult, StockadeRules, Verdict, evaluate

DIGEST = "sha256:" + "a" * 64
IMAGE = f"ghcr.io/acme/tool@{DIGEST}"
RULES = StockadeRules.of(("ghcr.io/acme/*",), frozenset({"granted"}))
GROUPS = ("initContainers", "containers", "ephemeralContainers")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def container(name: str) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


def restricted_pod() -> dict[str, Any]:
    """A Pod with one init, one app and one ephemeral container that passes PSS restricted."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "initContainers": [container("init")],
            "containers": [container("app")],
            "ephemeralContainers": [container("debug")],
        },
    }


def stockade_container(name: str) -> dict[str, Any]:
    c = container(name)
    c["securityContext"]["readOnlyRootFilesystem"] = True
    c["resources"] = {
        "limits": {"cpu": "500m", "memory": "256Mi", "ephemeral-storage": "64Mi"},
        "requests": {"cpu": "100m", "memory": "128Mi"},
    }
    return c


def stockade_pod() -> dict[str, Any]:
    """A Pod (init + app containers, no ephemeral one) that passes the stockade level."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "hardened"},
        "spec": {
            "runtimeClassName": "gvisor",
            "automountServiceAccountToken": False,
            "activeDeadlineSeconds": 300,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
                "appArmorProfile": {"type": "RuntimeDefault"},
            },
            "initContainers": [stockade_container("init")],
            "containers": [stockade_container("app")],
        },
    }


def setp(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """Return a deep copy of ``obj`` with ``path`` (``a.b[0].c``) set to ``value``.

    Missing mappings are created; the value ``DELETE`` removes the key.
    """
    out = copy.deepcopy(obj)
    steps: list[str | int] = [
        m.group(1) if m.group(1) is not None else int(m.group(2)) for m in _STEP.finditer(path)
    ]
    node: Any = out
    for step, nxt in itertools.pairwise(steps):
        if isinstance(step, int):
            node = node[step]
        else:
            if node.get(step) is None:
                node[step] = [] if isinstance(nxt, int) else {}
            node = node[step]
    last = steps[-1]
    if value is DELETE:
        if isinstance(last, int):
            del node[last]
        else:
            node.pop(last, None)
    else:
        node[last] = value
    return out


class _Delete:
    def __repr__(self) -> str:
        return "DELETE"


DELETE: Any = _Delete()


def run(
    obj: dict[str, Any], level: str = "restricted", only: set[str] | None = None
) -> AdmissionResult:
    return evaluate(obj, level, RULES, only)


def found(
    obj: dict[str, Any], level: str = "restricted", only: set[str] | None = None
) -> set[tuple[str, str]]:
    """The (check, path) pairs of every violation."""
    return {(v.check, v.path) for v in run(obj, level, only).violations}


def checks(
    obj: dict[str, Any], level: str = "restricted", only: set[str] | None = None
) -> set[str]:
    return {v.check for v in run(obj, level, only).violations}


def allowed(obj: dict[str, Any], level: str = "restricted", only: set[str] | None = None) -> bool:
    return run(obj, level, only).verdict is Verdict.ALLOW


def run_cli(argv: list[str]) -> int:
    """Run ``stockade`` in-process; return its exit code (0 when main returns normally)."""
    from stockade.cli import main

    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0
