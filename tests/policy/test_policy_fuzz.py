"""The loader fails closed on anything: a result with a policy or with errors, never a crash."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from stockade.policy import parse_policy

FILE = "/nonexistent-stockade-dir/policy.yaml"

KEYS = [
    "version",
    "default",
    "servers",
    "allow",
    "name",
    "command",
    "image",
    "network",
    "fs_allowlist",
    "tools",
    "rules",
    "tool",
    "action",
    "tier",
    "category",
    "arguments",
    "json_schema",
    "secrets",
    "env",
    "rate_limit",
    "rate",
    "burst",
    "path",
    "mode",
    "x",
]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False),
    st.text(max_size=12),
    st.sampled_from(["deny", "allow", "none", "1", "*", "..", "/etc"]),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    ),
    max_leaves=25,
)


def fails_closed(data: bytes | str) -> None:
    r = parse_policy(data, file=FILE)
    assert (r.policy is not None) == r.ok
    if not r.ok:
        assert r.errors
        for p in r.errors:
            assert p.message
            assert p.line >= 0
            assert p.col >= 0


@pytest.mark.guarantee("policy-all-problems-reported")
@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_crash_the_loader(data: bytes) -> None:
    fails_closed(data)


@pytest.mark.guarantee("policy-all-problems-reported")
@given(values, st.booleans())
def test_arbitrary_documents_never_crash_the_loader(doc: Any, top_v1: bool) -> None:
    if top_v1 and isinstance(doc, dict):
        doc = {"version": 1, "default": "deny", **doc}
    fails_closed(yaml.safe_dump(doc))
