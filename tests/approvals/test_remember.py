"""Remembered decisions: never a different category or a broader pattern; listed, revocable."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import (
    ApprovalRequest,
    ApprovalStore,
    Event,
    Remembered,
    State,
    StoreApprover,
    apply,
    covering,
    remember_from,
)
from stockade.cli import cli
from stockade.errors import ApprovalError
from stockade.models import Category, Decision, SystemClock, ToolCall
from stockade.testing import FakeClock

from .conftest import POLICY, make_call, make_request

URL_CALL = {"url": "https://api.example.com/upload", "data": "x"}


def decided(clock: FakeClock, kind: str = "approve", **kw: object) -> ApprovalRequest:
    req = make_request(clock, call=make_call(tool="upload", arguments=URL_CALL), **kw)  # type: ignore[arg-type]
    after, _ = apply(
        req,
        Event.model_validate({"kind": kind, "by": "alice", "channel": "web", "at": clock.now()}),
    )
    return after


def rem(clock: FakeClock, req: ApprovalRequest, **kw: object) -> Remembered:
    args: dict[str, object] = {
        "remembered_id": "rem_1",
        "pattern_kind": "domain",
        "domain": "api.example.com",
        "scope": "client",
        "by": "alice",
        "now": clock.now(),
        "ttl_s": 3600,
    }
    args.update(kw)
    return remember_from(req, **args)  # type: ignore[arg-type]


def call(**over: object) -> ToolCall:
    base: dict[str, object] = {"tool": "upload", "arguments": URL_CALL}
    base.update(over)
    return make_call(**base)


@pytest.mark.guarantee("apr-remembered-narrow")
def test_a_remembered_allow_never_covers_another_category_tool_server_domain_or_client(
    clock: FakeClock,
) -> None:
    r = rem(clock, decided(clock))
    now = clock.now()
    assert r.covers(call(), Category.EXFILTRATION, now)
    assert not r.covers(call(), Category.CREDENTIALS, now)
    assert not r.covers(call(tool="upload2"), Category.EXFILTRATION, now)
    assert not r.covers(call(server="other"), Category.EXFILTRATION, now)
    assert not r.covers(call(client="other"), Category.EXFILTRATION, now)
    evil = {"url": "https://api.example.com/u", "cc": "https://evil.example/"}
    assert not r.covers(call(arguments=evil), Category.EXFILTRATION, now)
    assert not r.covers(call(arguments={"data": "no url"}), Category.EXFILTRATION, now)
    sub = {"url": "https://x.api.example.com/u"}
    assert not r.covers(call(arguments=sub), Category.EXFILTRATION, now)


@pytest.mark.guarantee("apr-remembered-narrow")
def test_a_domain_not_named_by_the_decided_call_cannot_be_remembered(clock: FakeClock) -> None:
    with pytest.raises(ApprovalError, match="not a host"):
        rem(clock, decided(clock), domain="example.com")
    with pytest.raises(ApprovalError):
        rem(clock, decided(clock), ttl_s=31 * 86400)


def test_only_operator_decisions_can_be_remembered(clock: FakeClock) -> None:
    with pytest.raises(ApprovalError, match="only an operator"):
        rem(clock, make_request(clock))


@given(st.dictionaries(st.text(max_size=5), st.text(max_size=30), max_size=4))
def test_an_exact_arguments_pattern_covers_only_identical_arguments(
    arguments: dict[str, str],
) -> None:
    clock = FakeClock()
    r = rem(clock, decided(clock), pattern_kind="arguments", domain=None)
    assert r.covers(call(arguments=arguments), Category.EXFILTRATION, clock.now()) == (
        arguments == URL_CALL
    )


def test_expired_and_revoked_decisions_cover_nothing_and_deny_wins(clock: FakeClock) -> None:
    allow = rem(clock, decided(clock))
    deny = rem(clock, decided(clock, kind="deny"), remembered_id="rem_2")
    assert covering([allow, deny], call(), Category.EXFILTRATION, clock.now()) == deny
    assert covering([allow], call(), Category.EXFILTRATION, clock.now()) == allow
    later = clock.now().replace(year=2027)
    assert covering([allow], call(), Category.EXFILTRATION, later) is None
    revoked = allow.model_copy(update={"revoked_at": clock.now(), "revoked_by": "bob"})
    assert covering([revoked], call(), Category.EXFILTRATION, clock.now()) is None


@pytest.mark.guarantee("apr-remembered-narrow")
def test_the_approver_applies_a_remembered_allow_and_records_it(
    store: ApprovalStore, clock: FakeClock
) -> None:
    store.remember(rem(clock, decided(clock)))
    waits: list[float] = []
    a = StoreApprover(
        store,
        clock,
        policy_hash=lambda: POLICY,
        timeout_for=lambda c: 30.0,
        image_digest=lambda s: "sha256:" + "b" * 64,
        wait=waits.append,
    )
    ask = Decision.require_approval("upload", Category.EXFILTRATION, rule="r")
    answer = a.decide(call(), ask)
    assert answer.kind == "allow"
    assert waits == []
    [req] = store.list(now=clock.now())
    assert (req.state, req.decided_by) == (State.CONSUMED, "remembered:rem_1")
    other = a.decide(call(arguments={"url": "https://evil.example/"}), ask)
    assert other.kind == "deny"  # not covered: waited, expired
    store.forget("rem_1", by="bob", now=clock.now())
    assert store.remembered(now=clock.now()) == []
    assert store.remembered(now=clock.now(), include_inactive=True)[0].revoked_by == "bob"


def test_remember_list_and_forget_from_the_terminal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STOCKADE_HOME", str(tmp_path / "home"))
    db = tmp_path / "runs.db"
    clock = FakeClock(SystemClock().now())
    with ApprovalStore(db) as s:
        s.add(make_request(clock, call=make_call(tool="upload", arguments=URL_CALL)))
    runner = CliRunner()

    def ok(*args: str) -> str:
        out = runner.invoke(cli, [*args, "--store", str(db)], catch_exceptions=False)
        assert out.exit_code == 0, out.output
        return out.output

    ok("approvals", "approve", "apr_1", "--by", "alice")
    out = ok("approvals", "remember", "apr_1", "--domain", "api.example.com", "--by", "alice")
    rid = out.split()[0]
    assert "domain=api.example.com" in ok("approvals", "remembered")
    ok("approvals", "forget", rid, "--by", "bob")
    assert "no remembered decisions" in ok("approvals", "remembered")
    assert "revoked" in ok("approvals", "remembered", "--all")
