"""Audit log append throughput: HMAC-chained appends per second under each fsync mode.

Run: ``.venv/bin/python bench/bench_audit.py [--events N] [--batch B] [--repeat R]``. Each
configuration writes a fresh log in a temporary directory (a checkpoint every 100 events, the
default), verifies it afterwards, and prints appends/second (best of ``--repeat`` runs, to damp
noise from other load) and the ratio against the baseline measured in the same run (no fsync).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stockade.audit import AuditKeys, AuditLog, verify_file

KEYS = AuditKeys(hmac_key=b"\x01" * 32, signing_key=Ed25519PrivateKey.generate())
DATA = {
    "server": "fetch",
    "tool": "get_page",
    "arguments": {"url": "https://example.test/a/b?c=d", "max_bytes": 65536},
    "decision": {"kind": "allow", "rule": "tools.get_page", "tier": "low"},
}


def measure(mode: str, events: int, batch: int) -> float:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "audit.jsonl"
        log = AuditLog.open(path, keys=KEYS, fsync=mode, batch_size=batch)  # type: ignore[arg-type]
        start = time.perf_counter()
        for i in range(events):
            log.append("tool_call", {**DATA, "i": i}, run_id="run-1", session_id="s-1")
        log.close()
        elapsed = time.perf_counter() - start
        report = verify_file(path, public_key=KEYS.public_key, hmac_key=KEYS.hmac_key)
        assert report.ok, report.problem
        assert report.events == events
    return events / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--events", type=int, default=5000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument(
        "--fsync-events",
        type=int,
        default=1000,
        help="events for the fsync-per-event run (slow on real disks)",
    )
    args = ap.parse_args()
    runs = [
        ("no fsync (baseline)", "never", args.events),
        (f"fsync per batch of {args.batch}", "batch", args.events),
        ("fsync per event", "event", args.fsync_events),
    ]
    base = 0.0
    print(f"{'configuration':<28} {'events':>7} {'appends/s':>11} {'vs baseline':>12}")
    for name, mode, n in runs:
        rate = max(measure(mode, n, args.batch) for _ in range(args.repeat))
        base = base or rate
        print(f"{name:<28} {n:>7} {rate:>11,.0f} {rate / base:>11.2f}x")


if __name__ == "__main__":
    main()
