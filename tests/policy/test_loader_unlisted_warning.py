"""``resources: {unlisted_uris: route}`` is valid but warned: it widens raw resource uri routing."""

from __future__ import annotations

from pathlib import Path

from _policy_helpers import Writer
from click.testing import CliRunner

from stockade.cli import cli

POLICY = """\
version: 1
default: deny
servers:
  - name: everything
    command: [node]
    resources: {unlisted_uris: route}
  - name: quiet
    command: [node]
    resources: {unlisted_uris: refuse}
"""


def test_opting_a_server_in_to_unlisted_uris_is_a_warning_not_an_error(check: Writer) -> None:
    r = check(POLICY)
    assert r.ok
    assert r.policy is not None
    found = [w for w in r.warnings if "unlisted" in w.message]
    assert [(w.line, w.severity) for w in found] == [(6, "warning")]
    message = found[0].message
    assert "'everything' opts in to unlisted resource uris" in message
    assert "only opted-in server granted to the client" in message
    assert "audited" in message
    assert "unlisted: true" in message
    assert "resources.unlisted_uris" in found[0].fix


def test_the_default_refuse_and_an_explicit_refuse_are_not_warned(check: Writer) -> None:
    r = check(POLICY.replace("{unlisted_uris: route}", "{unlisted_uris: refuse}"))
    assert r.ok
    assert not [w for w in r.warnings if "unlisted" in w.message]


def test_policy_check_prints_the_warning_and_exits_0(tmp_path: Path) -> None:
    f = tmp_path / "p.yaml"
    f.write_text(POLICY, encoding="utf-8")
    result = CliRunner().invoke(cli, ["policy", "check", str(f)])
    assert result.exit_code == 0, result.output
    assert "opts in to unlisted resource uris" in result.output
    assert result.output.splitlines()[-1] == "valid"
