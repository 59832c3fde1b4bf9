"""Small public fakes for tests (see each module); never used in production wiring."""

from ._gateway import FakeClock, MemoryAuditSink, ScriptedApprover, StaticDecider
from ._kube import FakeCluster

__all__ = [
    "FakeClock",
    "FakeCluster",
    "MemoryAuditSink",
    "ScriptedApprover",
    "StaticDecider",
]
