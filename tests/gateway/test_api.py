"""The gateway package's public surface is curated; its fakes live in stockade.testing."""

from __future__ import annotations

from _surface import surface_problems
from stockade import gateway, testing
from stockade.models import Approver, AuditSink, Clock


def test_the_public_surface_is_curated_resolvable_documented_and_leaks_nothing_private() -> None:
    assert surface_problems(gateway, "gateway.md") == []


def test_the_fakes_satisfy_the_shared_protocols() -> None:
    assert isinstance(testing.MemoryAuditSink(), AuditSink)
    assert isinstance(testing.ScriptedApprover(allow=False), Approver)
    assert isinstance(testing.FakeClock(), Clock)
    assert isinstance(gateway.ListApprover(), Approver)
    assert isinstance(gateway.TerminalApprover(), Approver)
