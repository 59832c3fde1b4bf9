"""``stockade api serve`` end to end: a real process serving mTLS on loopback, wired to the store,
the audit log, run tokens and readiness."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from stockade.audit import AuditLog
from stockade.identity import CertificateAuthority, Role, client_context
from stockade.store import RunStore

from ._helpers import FixedClock, record, write_cert


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, httpx.Client, Path]]:
    clock = FixedClock(datetime.now(UTC))
    home = tmp_path / "home"
    ca = CertificateAuthority.init(home / "ca", clock)
    srv = write_cert(tmp_path / "c", ca.issue("api", Role.GATEWAY, clock, hosts=("localhost",)))
    ops = write_cert(tmp_path / "c", ca.issue("ops", Role.OPERATOR, clock))
    with RunStore.open(home / "runs.db") as s:
        s.create(record("r1"))
    with AuditLog.open(home / "audit" / "audit.jsonl", home / "keys") as log:
        log.append("run_started", {}, run_id="r1")
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ndefault: deny\n")
    env = {**os.environ, "STOCKADE_HOME": str(home), "PYTHONUNBUFFERED": "1"}
    argv = [sys.executable, "-m", "stockade", "api", "serve", "--port", "0", "--no-check-runtime",
            "--cert", str(srv.cert), "--key", str(srv.key), "--policy", str(policy)]  # fmt: skip
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            if not sel.select(timeout=20):
                pytest.fail("stockade api serve printed nothing within 20 s")
        line = proc.stdout.readline().decode()
        assert line.startswith("stockade control API on https://"), line
        port = int(line.rsplit(":", 1)[1])
        client = httpx.Client(
            verify=client_context(ca.cert_path, ops.cert, ops.key),
            base_url=f"https://localhost:{port}",
            timeout=5,
        )
        with client:
            yield line, client, home
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()


def test_api_serve_answers_over_mtls_with_its_dependencies_ready(
    served: tuple[str, httpx.Client, Path],
) -> None:
    _, client, home = served
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"store", "audit_sink"}
    assert [r["run_id"] for r in client.get("/v1/runs").json()["runs"]] == ["r1"]
    assert client.get("/v1/audit/verify").json()["ok"] is True
    assert client.get("/v1/policy").json()["effective_hash"].startswith("sha256:")
    assert (home / "keys" / "run-token.key").exists()
    assert "stockade_certificate_expiry_timestamp_seconds" in client.get("/metrics").text
