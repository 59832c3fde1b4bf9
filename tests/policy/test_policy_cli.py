"""``stockade policy check|show``: exit codes, every problem printed, terminal-safe output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


@pytest.mark.guarantee("policy-check-exit-codes")
def test_a_valid_file_exits_0_and_reports_each_entry_and_the_hash() -> None:
    code, out = run("policy", "check", str(EXAMPLES / "plugin-v0.yaml"))
    assert code == 0, out
    lines = out.splitlines()
    assert "parsed: ok (version 0 (historical plugin shape), normalised to version 1)" in lines
    assert "default: deny" in lines
    assert any(
        line.startswith("plugin example_safe_plugin: ok (runtime gvisor; network none")
        for line in lines
    )
    assert any(line.startswith("mandatory keys: present") for line in lines)
    assert any(line.startswith("effective hash: sha256:") for line in lines)
    assert lines[-1] == "valid"


def test_a_namespaces_server_is_valid_with_its_warning_under_its_line(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "version: 1\ndefault: deny\nservers:\n  - {name: s, command: [x], runtime: namespaces}\n"
    )
    code, out = run("policy", "check", str(f))
    assert code == 0
    lines = out.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("server s: ok"))
    assert "warning:" in lines[i + 1]
    assert "gVisor guarantee is waived" in lines[i + 1]


@pytest.mark.guarantee("policy-check-exit-codes")
@pytest.mark.guarantee("policy-all-problems-reported")
def test_an_invalid_file_exits_1_and_prints_every_problem(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(
        "version: 1\ndefault: allow\nservers:\n  - name: s\n    command: [x]\n"
        "    memry_mb: 1\n    privileged: true\n"
    )
    code, out = run("policy", "check", str(f))
    assert code == 1
    problems = [line for line in out.splitlines() if line.startswith(f"{f}:")]
    assert [p.split(": ", 1)[0] for p in problems] == [f"{f}:2:10", f"{f}:6:5", f"{f}:7:5"]
    assert all("(fix: " in p for p in problems)
    assert out.splitlines()[-1] == "invalid: 3 problems"


@pytest.mark.guarantee("policy-check-exit-codes")
def test_problems_with_terminal_escapes_are_neutralised(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text('version: 1\ndefault: deny\n"evil\\e]0;pwned\\a\\u202e": 1\n')
    code, out = run("policy", "check", str(f))
    assert code == 1
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "\x07" not in out


@pytest.mark.guarantee("policy-check-exit-codes")
@pytest.mark.parametrize(
    "args",
    [
        ["policy", "check", "/nonexistent/policy.yaml"],
        ["policy", "check"],
        ["policy", "check", "--bogus", "x"],
        ["policy", "check", "/"],
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    code, _ = run(*args)
    assert code == 2


def test_json_output_is_machine_readable(tmp_path: Path) -> None:
    code, out = run("policy", "check", "--json", str(EXAMPLES / "everything.yaml"))
    assert code == 0
    data = json.loads(out)
    assert data["valid"] is True
    assert data["default"] == "deny"
    assert data["effective_hash"].startswith("sha256:")
    assert [s["name"] for s in data["servers"]] == ["everything"]
    f = tmp_path / "p.yaml"
    f.write_text("version: 1\ndefault: allow\n")
    code, out = run("policy", "check", "--json", str(f))
    assert code == 1
    data = json.loads(out)
    assert data["valid"] is False
    assert [(e["line"], e["col"]) for e in data["errors"]] == [(2, 10)]


def test_show_prints_the_effective_policy_with_its_defaults() -> None:
    code, out = run("policy", "show", str(EXAMPLES / "plugin-v0.yaml"))
    assert code == 0
    assert out.startswith("# effective policy of")
    import yaml

    doc = yaml.safe_load(out)
    s = doc["servers"][0]
    assert (s["name"], s["kind"], s["pids"], s["network"]["mode"]) == (
        "example_safe_plugin",
        "plugin",
        64,
        "none",
    )
    code, out = run("policy", "show", "--format", "json", str(EXAMPLES / "everything.yaml"))
    assert code == 0
    assert json.loads(out)["version"] == 1


def test_show_of_an_invalid_file_exits_1(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text("default: allow\n")
    assert run("policy", "show", str(f))[0] == 1


@pytest.mark.guarantee("policy-check-exit-codes")
def test_the_installed_entry_point_returns_the_same_exit_codes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("default: allow\n")
    codes = []
    for path in (EXAMPLES / "plugin-v0.yaml", bad, tmp_path / "missing.yaml"):
        proc = subprocess.run(
            [sys.executable, "-m", "stockade", "policy", "check", str(path)],
            capture_output=True,
            timeout=60,
            check=False,
        )
        codes.append(proc.returncode)
    assert codes == [0, 1, 2]
