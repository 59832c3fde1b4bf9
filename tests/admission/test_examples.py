"""The shipped example workloads get exactly the decisions in examples/workloads/expected.yaml."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._helpers import run_cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "workloads"
EXPECTED: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load(
    (EXAMPLES / "expected.yaml").read_text()
)
ROWS = [(f, level, want) for f, levels in EXPECTED.items() for level, want in levels.items()]


def test_every_example_manifest_has_an_expectation() -> None:
    shipped = {p.name for p in EXAMPLES.glob("*.yaml")} - {"expected.yaml"}
    assert shipped == set(EXPECTED)


@pytest.mark.guarantee("admit-pss-baseline", "admit-pss-restricted", "admit-gvisor-required")
@pytest.mark.parametrize(("name", "level", "want"), ROWS, ids=[f"{f}-{lv}" for f, lv, _ in ROWS])
def test_example_gets_the_expected_decision(
    name: str, level: str, want: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["admit", "--json", "--level", level, "--registry", "ghcr.io/acme/*"]
    argv += ["--allow-secret", "api-token", str(EXAMPLES / name)]
    code = run_cli(argv)
    out = json.loads(capsys.readouterr().out)
    workloads = [d for d in out if d["kind"] != "ConfigMap"]
    assert {d["verdict"] for d in workloads} == {want["verdict"]}
    assert code == (0 if want["verdict"] == "allow" else 1)
    got = sorted({v["check"] for d in workloads for v in d["violations"]})
    assert got == sorted(want.get("checks", []))
