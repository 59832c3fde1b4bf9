"""Frozen value types shared by every part, and the small Protocols between parts."""

from ._base import Frozen
from ._calls import Category, Decision, DecisionKind, RiskTier, ToolCall
from ._image import PinnedImage
from ._protocols import Approver, AuditSink, Clock, SystemClock
from ._runs import AuditEvent, EndReason, RunRecord, RunStatus
from ._sandbox import Bind, NetworkProfile, Runtime, SandboxSpec

__all__ = [
    "Approver",
    "AuditEvent",
    "AuditSink",
    "Bind",
    "Category",
    "Clock",
    "Decision",
    "DecisionKind",
    "EndReason",
    "Frozen",
    "NetworkProfile",
    "PinnedImage",
    "RiskTier",
    "RunRecord",
    "RunStatus",
    "Runtime",
    "SandboxSpec",
    "SystemClock",
    "ToolCall",
]
