"""The terminal channel: stockade approvals list|show|approve|deny|watch and stockade kill."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stockade.approvals import ApprovalStore, Sessions, State
from stockade.audit import AuditLog
from stockade.cli import cli, main
from stockade.models import SystemClock
from stockade.secrets import DirectorySecretStore
from stockade.testing import FakeClock

from .conftest import make_call, make_request

NASTY = {"to": "x\x1b]0;pwned\x07@evil.example", "body": "\u202eexe.txt \x1b[2J"}


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def seed(db: Path, *ids: str) -> None:
    clock = FakeClock(SystemClock().now())
    with ApprovalStore(db) as s:
        for rid in ids:
            s.add(make_request(clock, rid=rid, timeout_s=3600, call=make_call(arguments=NASTY)))


def run(*args: str) -> str:
    out = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert out.exit_code == 0, out.output
    return out.output


def test_list_and_show_neutralise_untrusted_text(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db, "apr_a")
    for out in (
        run("approvals", "list", "--store", str(db)),
        run("approvals", "show", "apr_a", "--store", str(db)),
    ):
        assert "apr_a" in out
        assert "\x1b" not in out
        assert "\u202e" not in out
    assert "arguments (untrusted)" in run("approvals", "show", "apr_a", "--store", str(db))


@pytest.mark.guarantee("apr-operator-decides")
def test_approve_and_deny_record_the_operator_and_the_cli_channel(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db, "apr_a", "apr_b")
    run("approvals", "approve", "apr_a", "--store", str(db), "--by", "alice")
    run("approvals", "deny", "apr_b", "--store", str(db), "--by", "bob", "--reason", "no")
    with ApprovalStore(db) as s:
        a = s.get("apr_a", now=SystemClock().now())
        b = s.get("apr_b", now=SystemClock().now())
    assert (a.state, a.decided_by, a.channel) == (State.APPROVED, "alice", "cli")
    assert (b.state, b.decided_by, b.note) == (State.DENIED, "bob", "no")
    shown = json.loads(run("approvals", "show", "apr_b", "--store", str(db), "--json"))
    assert [h["to"] for h in shown["history"]] == ["denied"]
    assert "no pending" in run("approvals", "list", "--store", str(db))
    assert "apr_b" in run("approvals", "list", "--all", "--store", str(db))


def test_deciding_twice_fails_with_a_message_and_nonzero_exit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "runs.db"
    seed(db, "apr_a")
    main(["approvals", "deny", "apr_a", "--store", str(db), "--by", "bob"])
    with pytest.raises(SystemExit) as e:
        main(["approvals", "approve", "apr_a", "--store", str(db), "--by", "mallory"])
    assert e.value.code == 1
    assert "cannot approve a request that is denied" in capsys.readouterr().err


def test_watch_prints_pending_requests_and_ends_at_its_timeout(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db, "apr_a")
    out = run("approvals", "watch", "--store", str(db), "--timeout", "0")
    assert "apr_a" in out
    assert "1 pending seen" in out
    assert "\x1b" not in out


@pytest.mark.guarantee("apr-kill-switch")
def test_kill_cancels_pending_requests_until_lifted(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    seed(db, "apr_a")
    out = run("kill", "--store", str(db), "--by", "ops", "--reason", "incident 7")
    assert "ENGAGED" in out
    assert "apr_a" in out
    assert "KILL SWITCH ENGAGED" in run("approvals", "list", "--store", str(db))
    run("kill", "--lift", "--store", str(db), "--by", "ops", "--reason", "all clear")
    with ApprovalStore(db) as s:
        assert not s.kill_switch().engaged
        assert s.get("apr_a", now=SystemClock().now()).state == State.CANCELLED


def test_kill_needs_a_reason(tmp_path: Path) -> None:
    out = CliRunner().invoke(cli, ["kill", "--store", str(tmp_path / "runs.db")])
    assert out.exit_code == 2


def test_decisions_are_written_to_the_audit_log_when_one_exists(tmp_path: Path, home: Path) -> None:
    with AuditLog.open(home / "audit" / "audit.jsonl", home / "keys"):
        pass
    db = tmp_path / "runs.db"
    seed(db, "apr_a")
    run("approvals", "deny", "apr_a", "--store", str(db), "--by", "bob")
    log = (home / "audit" / "audit.jsonl").read_text()
    assert '"approval.denied"' in log
    assert '"by":"bob"' in log


def test_add_operator_stores_a_token_that_logs_in(home: Path) -> None:
    out = run("approvals", "add-operator", "alice")
    token = out.strip().splitlines()[-1]
    secrets = DirectorySecretStore(home / "secrets")
    sid, session = Sessions(secrets, SystemClock()).login("alice", token)
    assert session.operator == "alice"
    assert sid


def test_serve_refuses_a_non_loopback_address(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["approvals", "serve", "--host", "0.0.0.0", "--port", "0"])  # noqa: S104
    assert e.value.code == 1
    assert "non-loopback" in capsys.readouterr().err
