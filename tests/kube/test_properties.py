"""Property: for any valid spec, the render either refuses with a reason or passes both the
admission validator (where it applies), the renderer's own checks, and the 1.37 schemas."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stockade.admission import Level, Verdict, evaluate
from stockade.kube import ADMISSION_KINDS, KubeError, check_rendered, render, rules_for
from stockade.models import NetworkProfile, SandboxSpec

from ._helpers import REGISTRIES, render_input
from ._schema import validate_fast

_label = st.from_regex(r"[a-z][a-z0-9]{0,10}", fullmatch=True)
_domains = st.lists(
    st.builds(lambda a, b: f"{a}.{b}.com", _label, _label), min_size=1, max_size=3, unique=True
)
_network = st.one_of(
    st.just(NetworkProfile()),
    _domains.map(lambda d: NetworkProfile(mode="allowlist", domains=tuple(d))),
)
_secret_names = st.lists(
    st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True), unique=True, max_size=3
)
_env = st.lists(
    st.tuples(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True), st.text(max_size=20)),
    max_size=3,
    unique_by=lambda kv_: kv_[0],
)

specs = st.builds(
    SandboxSpec,
    argv=st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=4).map(tuple),
    cpu_seconds=st.floats(min_value=0.01, max_value=3600, allow_nan=False),
    timeout_s=st.floats(min_value=0.5, max_value=86400, allow_nan=False),
    memory_mb=st.integers(min_value=16, max_value=65536),
    tmp_size_mb=st.integers(min_value=1, max_value=4096),
    uid=st.integers(min_value=1, max_value=2**31 - 1),
    gid=st.integers(min_value=1, max_value=2**31 - 1),
    network=_network,
    secrets=_secret_names.map(tuple),
    env=_env.map(tuple),
)


@pytest.mark.guarantee("k8s-render-admitted")
@pytest.mark.guarantee("k8s-render-schema")
@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(spec=specs, run_id=st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True))
def test_any_valid_spec_renders_admitted_schema_valid_objects_or_refuses(
    spec: SandboxSpec, run_id: str
) -> None:
    inp = render_input(spec, run_id=run_id)
    if 1000 * spec.cpu_seconds / math.ceil(spec.timeout_s) < 1:
        # the only refusal a valid spec can meet
        with pytest.raises(KubeError, match="smallest CPU limit"):
            render(inp)
        return
    objs = render(inp)
    rules = rules_for(objs, REGISTRIES)
    assert check_rendered(objs, rules) == ()
    for o in objs:
        if o["kind"] in ADMISSION_KINDS:
            assert evaluate(o, Level.STOCKADE, rules, only=None).verdict == Verdict.ALLOW
        validate_fast(o)
