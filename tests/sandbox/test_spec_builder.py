"""build_spec: policy limits plus command-line overrides that may only tighten."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.errors import SandboxError
from stockade.models import Bind, NetworkProfile, Runtime
from stockade.sandbox import Overrides, PolicyLimits, build_spec

ARGV = ("/bin/true",)
POLICY = PolicyLimits(
    cpu_seconds=10,
    memory_mb=256,
    pids=64,
    timeout_s=60,
    network=NetworkProfile(mode="allowlist", domains=("api.example.com", "*.example.org")),
    binds=(Bind(source="/srv/data", target="/data", mode="rw"),),
    from_policy=True,
)


def test_without_overrides_the_spec_carries_the_policy_limits() -> None:
    spec = build_spec(ARGV, POLICY, Overrides())
    assert (spec.cpu_seconds, spec.memory_mb, spec.pids, spec.timeout_s) == (10, 256, 64, 60)
    assert spec.runtime == Runtime.GVISOR
    assert spec.read_only_root
    assert spec.uid == 65532


@pytest.mark.guarantee("sandbox-overrides-only-tighten")
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("memory_mb", 257),
        ("cpu_seconds", 10.5),
        ("pids", 65),
        ("timeout_s", 61),
        ("tmp_size_mb", 65),
    ],
)
def test_an_override_that_loosens_a_limit_is_an_error(field: str, value: float) -> None:
    with pytest.raises(SandboxError, match="loosens"):
        build_spec(ARGV, POLICY, Overrides(**{field: value}))


@pytest.mark.guarantee("sandbox-overrides-only-tighten")
@given(
    memory=st.integers(1, 256),
    cpu=st.floats(0.01, 10),
    pids=st.integers(1, 64),
    timeout=st.floats(0.01, 60),
)
def test_any_tightening_override_is_applied_and_never_exceeds_the_policy(
    memory: int, cpu: float, pids: int, timeout: float
) -> None:
    spec = build_spec(
        ARGV, POLICY, Overrides(memory_mb=memory, cpu_seconds=cpu, pids=pids, timeout_s=timeout)
    )
    assert spec.memory_mb == memory <= POLICY.memory_mb
    assert spec.cpu_seconds == cpu <= POLICY.cpu_seconds
    assert spec.pids == pids <= POLICY.pids
    assert spec.timeout_s == timeout <= POLICY.timeout_s


@pytest.mark.guarantee("sandbox-overrides-only-tighten")
def test_network_overrides_may_drop_to_none_or_a_subset_but_never_add_domains() -> None:
    assert build_spec(ARGV, POLICY, Overrides(network=NetworkProfile())).network.mode == "none"
    sub = NetworkProfile(mode="allowlist", domains=("api.example.com",))
    assert build_spec(ARGV, POLICY, Overrides(network=sub)).network == sub
    wider = NetworkProfile(mode="allowlist", domains=("api.example.com", "evilexample.com"))
    with pytest.raises(SandboxError, match=r"evilexample\.com"):
        build_spec(ARGV, POLICY, Overrides(network=wider))
    closed = PolicyLimits(from_policy=True)
    with pytest.raises(SandboxError, match="loosens"):
        build_spec(ARGV, closed, Overrides(network=sub))


@pytest.mark.guarantee("sandbox-overrides-only-tighten")
def test_binds_with_a_policy_stay_inside_its_allowlist_and_never_upgrade_to_rw() -> None:
    spec = build_spec(ARGV, POLICY, Overrides(ro=("/srv/data/sub",)))
    assert spec.binds == (Bind(source="/srv/data/sub", target="/data/sub", mode="ro"),)
    with pytest.raises(SandboxError, match="outside"):
        build_spec(ARGV, POLICY, Overrides(ro=("/srv/data-evil",)))
    with pytest.raises(SandboxError, match="outside"):
        build_spec(ARGV, POLICY, Overrides(ro=("/srv/data/../../etc",)))
    ro_policy = PolicyLimits(binds=(Bind(source="/srv/x", target="/x"),), from_policy=True)
    with pytest.raises(SandboxError, match="read-only"):
        build_spec(ARGV, ro_policy, Overrides(rw=("/srv/x",)))


@pytest.mark.guarantee("sandbox-overrides-only-tighten")
def test_servers_cannot_be_moved_off_gvisor_but_an_operators_job_may_choose_namespaces() -> None:
    server = PolicyLimits(kind="server", from_policy=True)
    with pytest.raises(SandboxError, match="gvisor"):
        build_spec(ARGV, server, Overrides(runtime=Runtime.NAMESPACES))
    job = build_spec(ARGV, PolicyLimits(), Overrides(runtime=Runtime.NAMESPACES))
    assert job.runtime == Runtime.NAMESPACES


def test_an_empty_command_is_refused() -> None:
    with pytest.raises(SandboxError, match="no command"):
        build_spec((), PolicyLimits(), Overrides())
