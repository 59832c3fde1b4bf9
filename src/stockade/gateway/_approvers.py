"""Approvers shipped with the gateway: a policy-driven list approver and a terminal approver.

Both answer ``deny`` on anything but an explicit yes; the chain's :class:`ApprovalStep` adds the
deadline (deny on timeout). The full veto system lives in ``stockade.approvals`` (separate issue).
"""

from __future__ import annotations

import os
import select
from collections.abc import Iterable

from stockade.models import Decision, ToolCall
from stockade.textsafe import safe_text

__all__ = ["ListApprover", "TerminalApprover"]


class ListApprover:
    """Auto-allow the exact ``server__tool`` names listed; deny everything else (and denylist)."""

    def __init__(self, allow: Iterable[str] = (), deny: Iterable[str] = ()) -> None:
        self.allow = frozenset(allow)
        self.deny = frozenset(deny)

    def decide(self, call: ToolCall, decision: Decision) -> Decision:
        name = f"{call.server}__{call.tool}"
        if name in self.allow and name not in self.deny:
            return Decision.allow(
                f"auto-approved by list ({decision.reason})", rule="approver.list"
            )
        return Decision.deny(
            f"approval required and not granted ({decision.reason})", rule="approver.list"
        )


class TerminalApprover:
    """Asks on the controlling terminal (``/dev/tty``), never on the MCP stdio; ``y`` allows."""

    def __init__(self, tty: str = "/dev/tty", timeout_s: float = 60.0) -> None:
        self._tty = tty
        self._timeout = timeout_s

    def decide(self, call: ToolCall, decision: Decision) -> Decision:
        try:
            fd = os.open(self._tty, os.O_RDWR | os.O_NOCTTY)
        except OSError as e:
            return Decision.deny(
                f"no terminal to ask for approval ({e.strerror})", rule="approver.tty"
            )
        try:
            args = safe_text(str(call.arguments), single_line=True, limit=400)
            prompt = (
                f"\nstockade: approve {safe_text(call.server, single_line=True)}__"
                f"{safe_text(call.tool, single_line=True)} for client "
                f"{safe_text(call.client, single_line=True)}?\n"
                f"  reason: {safe_text(decision.reason, single_line=True, limit=300)}\n"
                f"  arguments: {args}\n  [y/N] "
            )
            os.write(fd, prompt.encode("utf-8", "replace"))
            ready, _, _ = select.select([fd], [], [], self._timeout)
            if not ready:
                os.write(fd, b"\n(timed out: denied)\n")
                return Decision.deny("approval timed out at the terminal", rule="approver.tty")
            answer = os.read(fd, 64).decode("utf-8", "replace").strip().lower()
        finally:
            os.close(fd)
        if answer in {"y", "yes"}:
            return Decision.allow("approved at the terminal", rule="approver.tty")
        return Decision.deny("refused at the terminal", rule="approver.tty")
