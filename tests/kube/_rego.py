"""Evaluate exported Rego in-process with regopy (the Rego engine available here)."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest

regopy = pytest.importorskip("regopy", reason="regopy is not installed (pip install -e '.[dev]')")


@cache
def _interpreter(module: str) -> Any:
    interp = regopy.Interpreter()
    interp.add_module("stockade", module)
    return interp


def violations(module: str, package: str, obj: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The ``msg`` of every violation Gatekeeper would report for ``obj``."""
    interp = _interpreter(module)
    interp.set_input_term(json.dumps({"review": {"object": obj}, "parameters": params}))
    out = interp.query(f"x := data.{package}.violation")
    result = json.loads(str(out))
    assert "bindings" in result, f"Rego evaluation failed: {out}"
    return sorted(v["msg"] for v in result["bindings"]["x"])


def check_ids(msgs: list[str]) -> set[str]:
    return {m.split(":", 1)[0] for m in msgs}
