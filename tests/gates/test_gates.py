"""Preflight and postflight gates on clean and seeded bad states."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stockade import gates
from stockade.errors import SandboxError
from stockade.gates import (
    GateResult,
    postflight_checks,
    preflight_checks,
    run_checks,
    scan_text,
)

from .conftest import LEAKED, World


def results(checks: list[gates.Check]) -> dict[str, GateResult]:
    return {r.name: r for r in run_checks(checks)}


def test_public_surface_is_curated() -> None:
    assert sorted(gates.__all__) == sorted(
        n for n in dir(gates) if not n.startswith("_") and n != "annotations"
    )


def test_preflight_passes_on_a_clean_state(world: World) -> None:
    out = results(preflight_checks(world.policy, world.inputs))
    assert all(r.ok for r in out.values()), [r.line() for r in out.values()]
    assert set(out) == {
        "policy valid",
        "policy hash recorded",
        "runtime fake",
        "audit log verifies",
        "no secrets in logs",
    }


@pytest.mark.guarantee("cp-gate-policy-hash")
def test_preflight_fails_when_the_policy_changed_since_it_was_recorded(world: World) -> None:
    world.policy.write_text("version: 1\ndefault: deny\nservers: []\nclients: []\n")
    out = results(preflight_checks(world.policy, world.inputs))
    bad = out["policy hash recorded"]
    assert not bad.ok
    assert "the recorded one is" in bad.detail
    assert bad.line().startswith("FAIL policy hash recorded:")


def test_preflight_fails_on_an_invalid_policy(world: World) -> None:
    world.policy.write_text("version: 1\ndefault: allow\nbogus: 1\n")
    out = results(preflight_checks(world.policy, world.inputs))
    assert not out["policy valid"].ok
    assert not out["policy hash recorded"].ok


def test_preflight_fails_when_a_runtime_is_missing(world: World) -> None:
    def missing() -> str:
        raise SandboxError("gVisor (runsc) is not installed", "install it")

    inputs = dataclasses.replace(world.inputs, runtimes={"gvisor": missing})
    out = results(preflight_checks(world.policy, inputs))
    assert not out["runtime gvisor"].ok


@pytest.mark.guarantee("cp-gate-audit")
def test_preflight_and_postflight_fail_on_a_tampered_audit_log(world: World) -> None:
    lines = world.log.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1].replace(b"fetch", b"fetcH")
    world.log.write_bytes(b"".join(lines))
    assert not results(preflight_checks(world.policy, world.inputs))["audit log verifies"].ok
    post = results(postflight_checks("r1", world.inputs))
    assert not post["audit chain intact and sealed"].ok
    assert "line 2" in post["audit chain intact and sealed"].detail


@pytest.mark.guarantee("cp-gate-audit")
def test_postflight_fails_on_an_unsealed_audit_log(world: World) -> None:
    from stockade.audit import AuditLog

    with AuditLog.open_existing(world.log, world.inputs.audit.key_dir) as sink:
        sink.append("tool_call", {"tool": "late"}, run_id="r1")
        sink.close(checkpoint=False)
    post = results(postflight_checks("r1", world.inputs))
    assert not post["audit chain intact and sealed"].ok
    assert "after the last signed checkpoint" in post["audit chain intact and sealed"].detail


@pytest.mark.guarantee("cp-gate-secrets")
def test_a_policy_secret_in_the_audit_log_fails_both_gates(world: World) -> None:
    from stockade.audit import AuditLog

    with AuditLog.open_existing(world.log, world.inputs.audit.key_dir) as sink:
        sink.append("tool_call", {"args": {"pw": LEAKED}}, run_id="r1")
    pre = results(preflight_checks(world.policy, world.inputs))["no secrets in logs"]
    assert not pre.ok
    assert "policy secret" in pre.detail
    assert LEAKED not in pre.line()
    post = results(postflight_checks("r1", world.inputs))
    assert not post["secret rescan of the audit events"].ok
    assert post["secret rescan of the trace"].ok


@pytest.mark.guarantee("cp-gate-secrets")
def test_a_secret_in_the_trace_fails_postflight(world: World) -> None:
    with world.inputs.open_store() as s:
        # pragma: allowlist nextline secret
        s.add_evidence("r1", "tool_call", {"result": "AKIAIOSFODNN7EXAMPLE"})
    post = results(postflight_checks("r1", world.inputs))
    assert not post["secret rescan of the trace"].ok
    assert "AWS Access Key" in post["secret rescan of the trace"].detail


@pytest.mark.guarantee("cp-gate-secrets")
def test_a_detector_finding_in_a_scanned_log_fails_preflight(world: World, tmp_path: Path) -> None:
    extra = tmp_path / "gateway.log"
    # pragma: allowlist nextline secret
    extra.write_text("ok\nGITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345\n")
    inputs = dataclasses.replace(world.inputs, scan_paths=(extra,))
    bad = results(preflight_checks(world.policy, inputs))["no secrets in logs"]
    assert not bad.ok
    assert "gateway.log:2: GitHub Token" in bad.detail


def test_postflight_of_an_unknown_run_fails(world: World) -> None:
    assert not results(postflight_checks("nope", world.inputs))["run recorded"].ok


def test_scan_ignores_hashes_and_macs_but_finds_run_tokens() -> None:
    line = json.dumps({"prev": "ab" * 32, "mac": "cd" * 32, "data": {}})
    assert scan_text("x", line) == []
    token_line = "auth stk1.eyJydW4iOiJyMSJ9abcdefgh.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"  # noqa: S105
    assert [f.kind for f in scan_text("x", token_line)] == ["stockade run token"]
    assert scan_text("x", "pw\\u0022x", ['pw"x']) == []  # too short to scan for
    escaped = scan_text("x", json.dumps({"v": 'pass"word1'}), ['pass"word1'])
    assert [f.kind for f in escaped] == ["policy secret #1 (JSON-escaped)"]
