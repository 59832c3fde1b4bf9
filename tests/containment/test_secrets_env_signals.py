"""Environment, secrets and signals: nothing leaks in, secrets are files, nothing leaks out."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from stockade.secrets import MemorySecretStore

from .conftest import Runner

CANARY = "stockade-host-canary-7f3a"
SECRET = b"s3cr3t-token-value-91c2"


@pytest.mark.guarantee("sandbox-clean-env")
def test_the_environment_is_exactly_the_specs(run: Runner, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STOCKADE_CANARY", CANARY)
    store = MemorySecretStore({"api_token": SECRET})
    r = run(
        "import os; print(sorted(k for k in os.environ)); print(list(os.environ.values()))",
        env=(("GREETING", "hello"),),
        store=store,
        secrets=("api_token",),
    )
    assert CANARY not in r.stdout
    assert "GREETING" in r.stdout
    assert "STOCKADE_CANARY" not in r.stdout
    assert SECRET.decode() not in r.stdout
    assert "/root" not in r.stdout


@pytest.mark.guarantee("sandbox-secret-files")
@pytest.mark.guarantee("sandbox-clean-env")
def test_a_granted_secret_is_a_private_file_and_never_in_the_environment(run: Runner) -> None:
    store = MemorySecretStore({"api_token": SECRET})
    payload = """
import os, stat
p = "/run/secrets/api_token"
st = os.stat(p)
print("mode", oct(stat.S_IMODE(st.st_mode)), "uid", st.st_uid, "me", os.getuid())
print("value", open(p, "rb").read().decode())
print("env", any("s3cr3t" in v for v in os.environ.values()))
try:
    open(p, "a").write("x"); print("WROTE")
except OSError as e:
    print("readonly", e.errno)
"""
    r = run(payload, store=store, secrets=("api_token",))
    assert "mode 0o400 uid 65532 me 65532" in r.stdout, r.stdout + r.stderr
    assert f"value {SECRET.decode()}" in r.stdout
    assert "env False" in r.stdout
    assert "WROTE" not in r.stdout
    assert not Path(f"/dev/shm/stockade/{r.outcome.run_id}").exists()


@pytest.mark.guarantee("sandbox-no-signals-out")
def test_a_sandbox_cannot_signal_processes_outside_it(
    run: Runner, host_sleeper: subprocess.Popen[bytes]
) -> None:
    payload = f"""
import os, signal
for pid in ({host_sleeper.pid}, 1):
    try:
        os.kill(pid, signal.SIGKILL); print("SIGNALLED", pid)
    except OSError as e:
        print("blocked", pid, e.errno)
try:
    os.kill(-1, signal.SIGTERM)
except OSError as e:
    print("broadcast", e.errno)
"""
    r = run(payload)
    assert host_sleeper.poll() is None, "a host process died"
    assert f"SIGNALLED {host_sleeper.pid}" not in r.stdout
