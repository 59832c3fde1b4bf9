"""Warm pool: pre-started single-use gVisor sandboxes for one exact spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from stockade.errors import SandboxError
from stockade.models import EndReason, Runtime, SandboxSpec
from stockade.sandbox import Sandbox, WarmPool, find_gvisor

SPEC = SandboxSpec(argv=("/bin/sh", "-c", "read line; echo got:$line; exit 4"))


@pytest.fixture
def state(tmp_path: Path) -> Path:
    if os.geteuid() != 0:
        pytest.skip("RUNNER TESTS NEED ROOT (cgroups)")
    try:
        find_gvisor()
    except SandboxError as e:
        pytest.skip(f"BACKEND gvisor UNAVAILABLE: {e.what}")
    return tmp_path


def _talk(sb: Sandbox) -> tuple[bytes, int | None]:
    assert sb.stdin is not None
    assert sb.stdout is not None
    assert sb.stderr is not None
    sb.stdin.write(b"ping\n")
    sb.stdin.flush()
    out = sb.stdout.read()
    sb.stderr.read()
    sb.stdout.close()
    sb.stderr.close()
    return out, sb.wait(timeout=60).exit_code


@pytest.mark.gvisor
def test_a_pooled_sandbox_runs_the_spec_once_and_is_never_reused(state: Path) -> None:
    with WarmPool(SPEC, state=state, size=2) as pool:
        assert pool.fill() == 2
        first = pool.take(SPEC)
        second = pool.take(SPEC)
        assert first.run_id != second.run_id
        assert _talk(first) == (b"got:ping\n", 4)
        assert _talk(second) == (b"got:ping\n", 4)
        third = pool.take(SPEC)  # the pool is empty: a cold start, same behaviour
        assert _talk(third) == (b"got:ping\n", 4)
        assert first.wait().end_reason == EndReason.EXITED
    assert not any((state / "live").glob("*.json"))


@pytest.mark.gvisor
def test_a_request_whose_spec_differs_from_the_pools_is_refused(state: Path) -> None:
    with WarmPool(SPEC, state=state, size=1) as pool:
        pool.fill()
        with pytest.raises(SandboxError, match="differs"):
            pool.take(SPEC.model_copy(update={"memory_mb": 512}))
    assert not any((state / "live").glob("*.json"))


def test_the_pool_holds_only_gvisor_sandboxes_without_egress_or_secrets(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="gvisor"):
        WarmPool(SPEC.model_copy(update={"runtime": Runtime.NAMESPACES}), state=tmp_path)
    with pytest.raises(SandboxError, match="secrets"):
        WarmPool(SPEC.model_copy(update={"secrets": ("tok",)}), state=tmp_path)
