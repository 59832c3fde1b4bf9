"""Containment fixtures: run a payload under every available backend and report what happened."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stockade.errors import SandboxError
from stockade.models import Runtime, SandboxSpec
from stockade.sandbox import Outcome, find_bwrap, find_gvisor, launch

PY = "/usr/bin/python3"


def _available(runtime: Runtime) -> str | None:
    """None when usable, else the loud reason it is not."""
    if os.geteuid() != 0:
        return "the sandbox runner needs root"
    try:
        if runtime == Runtime.GVISOR:
            find_gvisor()
        else:
            find_bwrap()
    except SandboxError as e:
        return e.what
    if not Path(PY).is_file():
        return f"{PY} is absent: the payloads are python3 snippets"
    return None


BACKENDS = [
    pytest.param(Runtime.GVISOR, marks=pytest.mark.gvisor, id="gvisor"),
    pytest.param(Runtime.NAMESPACES, marks=pytest.mark.bwrap, id="namespaces"),
]


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    stdout: str
    stderr: str


Runner = Callable[..., Result]


@pytest.fixture(params=BACKENDS)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    rt: Runtime = request.param
    why = _available(rt)
    if why is not None:
        pytest.skip(f"BACKEND {rt.value} UNAVAILABLE ON THIS HOST: {why}")
    return rt


@pytest.fixture
def state(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def run(runtime: Runtime, state: Path) -> Iterator[Runner]:
    def _run(payload: str, *, store: Any = None, launch_kw: Any = None, **fields: Any) -> Result:
        fields.setdefault("timeout_s", 20)
        script = "print('START', flush=True)\n" + payload
        spec = SandboxSpec(argv=(PY, "-c", script), runtime=runtime, **fields)
        sb = launch(spec, state=state, secrets=store, **(launch_kw or {}))
        out, err = sb.stdout, sb.stderr
        assert out is not None
        assert err is not None
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        outcome = sb.wait(timeout=60)
        out.close()
        err.close()
        assert stdout.startswith("START"), f"the payload never ran: {stderr[-2000:]}"
        return Result(outcome, stdout, stderr)

    yield _run
    leftovers = list((state / "live").glob("*.json")) if (state / "live").exists() else []
    assert not leftovers, f"runs left live state behind: {leftovers}"


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory the unprivileged sandbox uid may traverse (pytest's tmp_path is 0700)."""
    d = Path(tempfile.mkdtemp(prefix="stockade-containment-"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def host_sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["/bin/sleep", "60"])
    yield proc
    proc.kill()
    proc.wait(timeout=10)
