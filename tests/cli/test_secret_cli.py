from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli
from stockade.secrets import DirectorySecretStore

VALUE = "s3cr3t-value-for-test"  # pragma: allowlist secret


@pytest.mark.guarantee("secret-cli-never-prints-values")
def test_put_list_rm_round_trip_never_prints_the_value(tmp_path: Path) -> None:
    d = tmp_path / "home" / "secrets"
    r = CliRunner()
    out = r.invoke(cli, ["secret", "put", "api-token", "--dir", str(d)], input=VALUE + "\n")
    assert out.exit_code == 0, out.output
    assert VALUE not in out.output
    assert DirectorySecretStore(d).get("api-token") == VALUE.encode()
    f = d / "api-token"
    assert stat.S_IMODE(f.stat().st_mode) == 0o400
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    listed = r.invoke(cli, ["secret", "list", "--dir", str(d)])
    assert listed.output.split() == ["api-token"]
    assert VALUE not in listed.output
    gone = r.invoke(cli, ["secret", "rm", "api-token", "--dir", str(d)])
    assert gone.exit_code == 0
    assert DirectorySecretStore(d).names() == ()


def test_put_refuses_an_empty_value(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["secret", "put", "x", "--dir", str(tmp_path / "s")], input="")
    assert out.exit_code != 0


def test_put_refuses_a_bad_name(tmp_path: Path) -> None:
    out = CliRunner().invoke(
        cli, ["secret", "put", "../escape", "--dir", str(tmp_path / "s")], input="v"
    )
    assert out.exit_code != 0
    assert not (tmp_path / "escape").exists()
