"""Small public fakes for tests (see each module); never used in production wiring."""

from ._gateway import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider

__all__ = ["FakeClock", "MemoryAuditSink", "ScriptedApprover", "StaticDecider"]
