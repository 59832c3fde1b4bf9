"""Matchers behind registries, egress domains and image references."""

from __future__ import annotations

import pytest

from stockade.policy import domain_matches, image_repository, registry_matches


@pytest.mark.guarantee("policy-network-domains-strict")
@pytest.mark.parametrize(
    ("pattern", "host", "ok"),
    [
        ("api.example.com", "api.example.com", True),
        ("api.example.com", "API.example.com.", True),
        ("api.example.com", "x.api.example.com", False),
        ("*.example.com", "a.example.com", True),
        ("*.example.com", "a.b.example.com", True),
        ("*.example.com", "example.com", False),
        ("*.example.com", "badexample.com", False),
        ("*.example.com", "example.com.evil.io", False),
    ],
)
def test_domain_patterns_match_exact_names_and_strict_subdomains(
    pattern: str, host: str, ok: bool
) -> None:
    assert domain_matches(pattern, host) is ok


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("node:20", ("docker.io/library/node", "20", None)),
        ("team/tool", ("docker.io/team/tool", None, None)),
        ("localhost:5000/a/b:1", ("localhost:5000/a/b", "1", None)),
        (
            "registry.example.com/t/x@sha256:" + "a" * 64,
            ("registry.example.com/t/x", None, "sha256:" + "a" * 64),
        ),
    ],
)
def test_image_references_are_split_and_normalised(
    ref: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert image_repository(ref) == expected


@pytest.mark.parametrize(
    "ref", ["", " x", "UPPER/x", "x@sha256:short", "x:bad tag", "a//b", "x@md5:" + "a" * 32]
)
def test_malformed_image_references_are_rejected(ref: str) -> None:
    with pytest.raises(ValueError, match="image"):
        image_repository(ref)


@pytest.mark.guarantee("policy-registry-allowlist")
@pytest.mark.parametrize(
    ("pattern", "repo", "ok"),
    [
        ("registry.example.com/team/*", "registry.example.com/team/x", True),
        ("registry.example.com/team/*", "registry.example.com/team/x/y", True),
        ("registry.example.com/team/*", "registry.example.com/team", False),
        ("registry.example.com/team/*", "registry.example.com/teamx/y", False),
        ("registry.example.com/team/x", "registry.example.com/team/x", True),
        ("registry.example.com/team/x", "registry.example.com/team/x2", False),
    ],
)
def test_registry_patterns_match_below_their_prefix(pattern: str, repo: str, ok: bool) -> None:
    assert registry_matches(pattern, repo) is ok
