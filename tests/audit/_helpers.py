"""Shared helpers for the audit tests: fixed keys, a stepping clock, and a sample log."""

from __future__ import annotations

import functools
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stockade.audit import AuditKeys, AuditLog, Checkpoint, verify_log


class StepClock:
    """A deterministic clock: each call is one millisecond after the previous one."""

    def __init__(self, start: datetime = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) -> None:
        self._t = start

    def now(self) -> datetime:
        self._t += timedelta(milliseconds=1)
        return self._t


def keys(seed: int = 1) -> AuditKeys:
    return AuditKeys(
        hmac_key=bytes([seed]) * 32,
        signing_key=Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32),
    )


KEYS = keys(1)
OTHER = keys(2)


def write_log(
    path: Path, n: int, *, every: int = 4, k: AuditKeys = KEYS, seal: bool = True
) -> None:
    with AuditLog.open(
        path, keys=k, clock=StepClock(), checkpoint_every=every, fsync="never"
    ) as log:
        for i in range(n):
            log.append(
                "tool_call",
                {"i": i, "tool": "fetch", "args": {"url": f"https://example.test/{i}"}},
                run_id=f"run-{i % 3}",
                session_id="s-1" if i % 2 else None,
            )
        if not seal:
            log.close(checkpoint=False)


@functools.cache
def sample_log(n: int = 10, every: int = 4, seal: bool = True) -> bytes:
    """Bytes of a log of ``n`` events with checkpoints every ``every`` events (and at close)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "audit.jsonl"
        write_log(path, n, every=every, seal=seal)
        return path.read_bytes()


def head_of(content: bytes) -> Checkpoint:
    report = verify_log(content, public_key=KEYS.public_key, hmac_key=KEYS.hmac_key)
    assert report.ok, report.problem
    assert report.head is not None
    return report.head


def lines_of(content: bytes) -> list[bytes]:
    return content.split(b"\n")[:-1]


def join(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)
