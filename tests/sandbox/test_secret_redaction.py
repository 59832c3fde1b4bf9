"""Secret values granted to a run are registered with the audit redactor before any event."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from stockade.audit import AuditLog
from stockade.errors import SandboxError
from stockade.models import Runtime, SandboxSpec
from stockade.sandbox import find_bwrap, find_gvisor, start_recorded
from stockade.sandbox._secretreg import fetch_and_register, redaction_forms
from stockade.secrets import MemorySecretStore
from stockade.store import RunStore

from .test_refusal import ListSink

SECRET = "s3cr3t-Value-9f2c1e7d"  # noqa: S105  # pragma: allowlist secret


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC)


def _store() -> MemorySecretStore:
    store = MemorySecretStore()
    store.put("api_token", (SECRET + "\n").encode())
    return store


def test_every_form_of_a_value_the_workload_may_print_is_registered() -> None:
    assert SECRET in redaction_forms((SECRET + "\n").encode())
    assert SECRET + "\n" in redaction_forms((SECRET + "\n").encode())
    assert redaction_forms(b"  \n") == set()


@pytest.mark.guarantee("sandbox-secrets-redacted")
def test_a_sink_that_cannot_redact_refuses_a_run_granted_secrets() -> None:
    spec = SandboxSpec(argv=("/bin/true",), secrets=("api_token",))
    with pytest.raises(SandboxError, match="cannot redact"):
        fetch_and_register(spec, _store(), ListSink())
    assert fetch_and_register(SandboxSpec(argv=("/bin/true",)), None, ListSink()) is None


@pytest.mark.guarantee("sandbox-secrets-redacted")
@pytest.mark.parametrize(
    "runtime",
    [
        pytest.param(Runtime.GVISOR, marks=pytest.mark.gvisor, id="gvisor"),
        pytest.param(Runtime.NAMESPACES, marks=pytest.mark.bwrap, id="namespaces"),
    ],
)
def test_a_secret_printed_by_the_workload_never_reaches_the_audit_log_or_the_run_store(
    runtime: Runtime, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor() if runtime == Runtime.GVISOR else find_bwrap()
    except SandboxError as e:
        pytest.skip(f"BACKEND {runtime.value} UNAVAILABLE: {e.what}")
    spec = SandboxSpec(
        argv=("/bin/sh", "-c", "cat /run/secrets/api_token; echo leaked >&2"),
        runtime=runtime,
        secrets=("api_token",),
    )
    log_path = tmp_path / "audit" / "audit.jsonl"
    with (
        RunStore.open(tmp_path / "runs.db") as store,
        AuditLog.open(log_path, tmp_path / "keys") as audit,
    ):
        # Evidence logged before launch already carries the value: it must be redacted too.
        run = start_recorded(
            spec, state=tmp_path / "st", clock=FixedClock(), store=store, audit=audit,
            secrets=_store(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            evidence=(("note", {"echo": f"token={SECRET}"}),),
        )  # fmt: skip
        assert run.sandbox.stdout is not None
        assert run.sandbox.stderr is not None
        with run.sandbox.stdout as o, run.sandbox.stderr as e:
            out = o.read().decode()
            e.read()
        outcome, _ = run.wait(timeout=120)
        assert outcome.exit_code == 0
        assert SECRET in out  # the workload did print it
        # What a caller (the gateway) logs about the run's output is redacted as well.
        audit.append("tool.result", {"text": out}, run_id=run.run_id)
    assert SECRET not in log_path.read_text()
    assert "token=" in log_path.read_text()
    for f in tmp_path.glob("runs.db*"):
        assert SECRET.encode() not in f.read_bytes()
