"""Meta-test: every guarantee in the manifest is proved by at least one test, and vice versa."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).parent


def manifest() -> dict[str, str]:
    out: dict[str, str] = {}
    for f in sorted((TESTS / "guarantees").glob("*.txt")):
        for n, line in enumerate(f.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            gid, _, text = line.partition(" ")
            assert text.strip(), f"{f.name}:{n}: guarantee {gid} has no statement"
            assert gid not in out, f"{f.name}:{n}: guarantee {gid} listed twice"
            out[gid] = text.strip()
    return out


def cited() -> dict[str, list[str]]:
    """Ids passed to pytest.mark.guarantee(...) anywhere under tests/, found by parsing the AST."""
    out: dict[str, list[str]] = {}
    for f in sorted(TESTS.rglob("test_*.py")):
        tree = ast.parse(f.read_text(), filename=str(f))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "guarantee"
            ):
                for arg in node.args:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        out.setdefault(arg.value, []).append(f"{f.relative_to(TESTS)}")
    return out


def test_every_guarantee_has_a_test() -> None:
    missing = sorted(set(manifest()) - set(cited()))
    assert not missing, f"guarantees with no test citing them: {missing}"


def test_every_cited_guarantee_is_in_the_manifest() -> None:
    unknown = {g: files for g, files in cited().items() if g not in manifest()}
    assert not unknown, f"tests cite guarantees missing from tests/guarantees/*.txt: {unknown}"


def test_manifest_is_not_empty() -> None:
    assert len(manifest()) >= 1
