"""The shipped approvers: list-driven and terminal (driven through a real pseudo-terminal)."""

from __future__ import annotations

import os
import pty
import threading

import pytest

from stockade.gateway import ListApprover, TerminalApprover
from stockade.models import Category, Decision, ToolCall

CALL = ToolCall(server="mail", tool="send", arguments={"to": "bob@example.com"}, client="alice")
ASK = Decision.require_approval("needs a human", Category.EXFILTRATION)


def test_the_list_approver_allows_only_listed_tools() -> None:
    assert ListApprover(allow={"mail__send"}).decide(CALL, ASK).kind == "allow"
    assert ListApprover().decide(CALL, ASK).kind == "deny"
    assert ListApprover(allow={"mail__send"}, deny={"mail__send"}).decide(CALL, ASK).kind == "deny"


def ask_on_pty(
    answer: bytes | None, timeout_s: float = 5.0, call: ToolCall = CALL
) -> tuple[Decision, bytes]:
    master, slave = pty.openpty()
    name = os.ttyname(slave)
    shown = bytearray()

    def operator() -> None:
        while b"[y/N]" not in shown:
            chunk = os.read(master, 4096)
            if not chunk:
                return
            shown.extend(chunk)
        if answer is not None:
            os.write(master, answer)

    t = threading.Thread(target=operator, daemon=True)
    t.start()
    try:
        decision = TerminalApprover(tty=name, timeout_s=timeout_s).decide(call, ASK)
    finally:
        t.join(5)
        os.close(slave)
        os.close(master)
    return decision, bytes(shown)


@pytest.mark.parametrize(
    ("answer", "kind"), [(b"y\n", "allow"), (b"yes\n", "allow"), (b"n\n", "deny"), (b"\n", "deny")]
)
def test_the_terminal_approver_allows_only_an_explicit_yes(answer: bytes, kind: str) -> None:
    decision, shown = ask_on_pty(answer)
    assert decision.kind == kind
    assert b"mail__send" in shown
    assert b"bob@example.com" in shown


@pytest.mark.guarantee("gw-approval-timeout-denies")
def test_the_terminal_approver_denies_when_nobody_answers() -> None:
    decision, _ = ask_on_pty(None, timeout_s=0.1)
    assert decision.kind == "deny"
    assert "timed out" in decision.reason


def test_the_terminal_approver_denies_without_a_terminal() -> None:
    assert TerminalApprover(tty="/nonexistent/tty").decide(CALL, ASK).kind == "deny"


def test_untrusted_arguments_are_shown_neutralised() -> None:
    call = ToolCall(server="mail", tool="send", arguments={"to": "\x1b]0;owned\x07x"}, client="a")
    decision, shown = ask_on_pty(b"n\n", call=call)
    assert decision.kind == "deny"
    assert b"\x1b]0;owned" not in shown
