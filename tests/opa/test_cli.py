"""``stockade opa eval``: the same question and answer mapping as the gateway would use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli, main

from .test_opa import REGO


def test_opa_eval_prints_the_decision_and_exits_by_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rego = tmp_path / "authz.rego"
    rego.write_text(REGO)
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"question": "tool_call", "client": "alice", "server": "web", "tool": "fetch"})
    )
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"question": "tool_call", "client": "eve", "server": "web", "tool": "fetch"})
    )
    r = CliRunner().invoke(cli, ["opa", "eval", "--rego", str(rego), "--input", str(good)])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("allow: alice may fetch")
    with pytest.raises(SystemExit) as exited:  # stockade's entry point propagates the result
        main(["opa", "eval", "--rego", str(rego), "--input", str(bad)])
    assert exited.value.code == 1
    assert capsys.readouterr().out.startswith("deny: no rule allows this call")
    r = CliRunner().invoke(cli, ["opa", "eval", "--input", str(bad)])
    assert r.exit_code != 0
