"""``stockade api token``: issues a token that the control API accepts for that run only."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.cli import cli
from stockade.cli._api import TOKEN_KEY_FILE, load_token_key
from stockade.errors import IdentityError
from stockade.identity import MemoryRevocations, TokenAuthority
from stockade.models import SystemClock
from stockade.store import RunStore

from ._helpers import record


def test_api_token_issues_a_run_bound_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path))
    with RunStore.open(tmp_path / "runs.db") as s:
        s.create(record("r1"))
    key = load_token_key(tmp_path / "keys", create=True)
    assert stat.S_IMODE((tmp_path / "keys" / TOKEN_KEY_FILE).stat().st_mode) == 0o600
    r = CliRunner().invoke(cli, ["api", "token", "r1", "--scope", "progress"])
    assert r.exit_code == 0, r.output
    auth = TokenAuthority(key, SystemClock(), MemoryRevocations())
    assert auth.check(r.output.strip(), run_id="r1", scope="progress").run == "r1"
    missing = CliRunner().invoke(cli, ["api", "token", "nope", "--scope", "progress"])
    assert missing.exit_code != 0


def test_a_token_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    load_token_key(tmp_path, create=True)
    (tmp_path / TOKEN_KEY_FILE).chmod(0o644)
    with pytest.raises(IdentityError, match="readable by others"):
        load_token_key(tmp_path, create=False)
