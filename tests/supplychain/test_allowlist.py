"""The registry allowlist admits only matching names and names the nearest rule when it denies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.supplychain import (
    ImageReferenceError,
    RegistryAllowlist,
    RegistryDeniedError,
    parse_reference,
)

ALLOW = RegistryAllowlist.of(
    "docker.io/library/*", "ghcr.io/acme/*", "127.0.0.1:5000/*", "quay.io/org/exact"
)


@pytest.mark.guarantee("image-registry-allowlist")
@pytest.mark.parametrize(
    ("image", "rule"),
    [
        ("nginx", "docker.io/library/*"),
        ("index.docker.io/library/nginx:1", "docker.io/library/*"),
        ("ghcr.io/acme/tool", "ghcr.io/acme/*"),
        ("ghcr.io/acme/team/tool@sha256:" + "0" * 64, "ghcr.io/acme/*"),
        ("127.0.0.1:5000/any/thing", "127.0.0.1:5000/*"),
        ("quay.io/org/exact:v2", "quay.io/org/exact"),
    ],
)
def test_allowlisted_names_are_admitted_by_the_rule_that_matches(image: str, rule: str) -> None:
    assert ALLOW.check(parse_reference(image)) == rule


@pytest.mark.guarantee("image-registry-allowlist")
@pytest.mark.parametrize(
    ("image", "nearest"),
    [
        ("ghcr.io/acmex/tool", "ghcr.io/acme/*"),  # prefix is a path element, not a string
        ("ghcr.io/acme", "ghcr.io/acme/*"),  # the namespace itself is not below it
        ("quay.io/org/exact2", "quay.io/org/exact"),
        ("quay.io/org/exact/sub", "quay.io/org/exact"),
        ("acme/tool", "docker.io/library/*"),
        ("127.0.0.1:5001/a", "127.0.0.1:5000/*"),
        ("evil.example/library/nginx", None),
    ],
)
def test_other_names_are_denied_naming_the_nearest_rule(image: str, nearest: str | None) -> None:
    decision = ALLOW.evaluate(parse_reference(image))
    assert not decision.allowed
    if nearest is not None:
        assert decision.rule == nearest
        assert nearest in decision.reason
    with pytest.raises(RegistryDeniedError, match="not allowlisted"):
        ALLOW.check(parse_reference(image))


@pytest.mark.guarantee("image-registry-allowlist")
def test_an_empty_allowlist_denies_everything() -> None:
    with pytest.raises(RegistryDeniedError, match="allowlist is empty"):
        RegistryAllowlist().check(parse_reference("nginx"))


def test_registry_wide_rules_admit_every_repository_of_that_registry_only() -> None:
    allow = RegistryAllowlist.of("docker.io/*")
    assert allow.evaluate(parse_reference("acme/tool")).allowed
    assert not allow.evaluate(parse_reference("ghcr.io/acme/tool")).allowed


@pytest.mark.parametrize(
    "pattern", ["*", "ghcr.io/*/tool", "ghcr.io/acme/tool*", "ghcr.io/acme:v1", "", "GHCR.io/A/*"]
)
def test_malformed_rules_are_rejected(pattern: str) -> None:
    with pytest.raises(ImageReferenceError):
        RegistryAllowlist.of(pattern)


_seg = st.from_regex(r"[a-z0-9]{1,4}", fullmatch=True)
_repo = st.lists(_seg, min_size=2, max_size=4).map("/".join)
_regs = st.sampled_from(["ghcr.io", "quay.io", "127.0.0.1:5000", "docker.io"])


@given(st.lists(st.tuples(_regs, _repo, st.booleans()), max_size=5), _regs, _repo, _regs, _repo)
def test_adding_a_rule_never_denies_what_was_allowed(
    rules: list[tuple[str, str, bool]], image_reg: str, image_repo: str, new_reg: str, new_repo: str
) -> None:
    patterns = [f"{r}/{p}" + ("/*" if pre else "") for r, p, pre in rules]
    before = RegistryAllowlist.of(*patterns)
    after = RegistryAllowlist.of(*patterns, f"{new_reg}/{new_repo}/*")
    ref = parse_reference(f"{image_reg}/{image_repo}")
    if before.evaluate(ref).allowed:
        assert after.evaluate(ref).allowed
    if not after.evaluate(ref).allowed:
        assert not before.evaluate(ref).allowed
