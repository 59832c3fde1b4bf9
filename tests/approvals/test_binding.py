"""Approvals are bound to the exact call: any field that differs gives a different digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import CallBinding, canonical_arguments
from stockade.errors import ApprovalError

from .conftest import make_call

text = st.text(min_size=1, max_size=8)


@pytest.mark.guarantee("apr-bound-to-call")
@given(
    st.sampled_from(["server", "image_digest", "tool", "arguments", "policy_hash", "session"]),
    text,
)
def test_changing_any_bound_field_changes_the_digest(field: str, value: str) -> None:
    b = CallBinding.of(make_call(), image_digest="sha256:x", policy_hash="sha256:p")
    other = b.model_copy(update={field: getattr(b, field) + value})
    assert other.digest != b.digest


def test_field_boundaries_cannot_be_shifted_to_collide() -> None:
    a = CallBinding(server="ab", tool="c", arguments="{}", policy_hash="p")
    b = CallBinding(server="a", tool="bc", arguments="{}", policy_hash="p")
    assert a.digest != b.digest


def test_argument_order_does_not_matter_but_values_do() -> None:
    assert canonical_arguments({"a": 1, "b": [1, 2]}) == canonical_arguments({"b": [1, 2], "a": 1})
    assert canonical_arguments({"a": 1}) != canonical_arguments({"a": 1.5})


def test_non_json_arguments_are_refused() -> None:
    with pytest.raises(ApprovalError):
        canonical_arguments({"a": float("nan")})
