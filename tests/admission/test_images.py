"""Image references parsed with Docker's defaults; allowlist patterns parsed strictly."""

from __future__ import annotations

import pytest

from stockade.admission import StockadeRules, parse_image_ref, parse_registry_pattern
from stockade.errors import UsageError

D = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize(
    ("ref", "registry", "repository", "tag", "pinned"),
    [
        ("nginx", "docker.io", "library/nginx", None, False),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", False),
        (f"nginx@{D}", "docker.io", "library/nginx", None, True),
        ("acme/tool:v1", "docker.io", "acme/tool", "v1", False),
        ("index.docker.io/acme/tool", "docker.io", "acme/tool", None, False),
        ("ghcr.io/acme/tool", "ghcr.io", "acme/tool", None, False),
        ("ghcr.io/acme/a/b/c:1", "ghcr.io", "acme/a/b/c", "1", False),
        ("localhost/tool", "localhost", "tool", None, False),
        (f"localhost:5000/acme/tool:1@{D}", "localhost:5000", "acme/tool", "1", True),
        ("registry.example:443/x", "registry.example:443", "x", None, False),
    ],
)
def test_references_get_docker_defaults(
    ref: str, registry: str, repository: str, tag: str | None, pinned: bool
) -> None:
    parsed = parse_image_ref(ref)
    assert (parsed.registry, parsed.repository, parsed.tag, parsed.pinned) == (
        registry,
        repository,
        tag,
        pinned,
    )


@pytest.mark.parametrize(
    "ref",
    [
        "",
        " nginx",
        "Nginx",
        "ghcr.io/Acme/tool",
        "ghcr.io//tool",
        "a@sha256:zz",
        "a:b:c",
        "a:" + "t" * 200,
        "ghcr.io/acme/tool@",
    ],
)
def test_malformed_references_are_rejected(ref: str) -> None:
    with pytest.raises(ValueError, match=r"expected|not"):
        parse_image_ref(ref)


@pytest.mark.parametrize(
    "pattern",
    [
        "*",
        "",
        "ghcr.io/*",  # a whole registry
        "acme/*",  # no registry host
        "nginx",
        "library/*",
        "https://ghcr.io/acme/*",
        "ghcr.io/*/tool",
        "ghcr.io/acme/*/*",
        "ghcr.io/acme/tool:1",
        f"ghcr.io/acme/tool@{D}",
        "ghcr.io/acme*",
    ],
)
def test_invalid_registry_patterns_are_a_usage_error(pattern: str) -> None:
    with pytest.raises(ValueError, match=r"expected|not"):
        parse_registry_pattern(pattern)
    with pytest.raises(UsageError, match="invalid registry pattern"):
        StockadeRules.of((pattern,))


def test_patterns_normalise_docker_hub_hosts() -> None:
    assert parse_registry_pattern("index.docker.io/acme/*").registry == "docker.io"
    assert parse_registry_pattern("GHCR.io/acme/*") == parse_registry_pattern("ghcr.io/acme/*")
    exact = parse_registry_pattern("docker.io/library/nginx")
    assert (exact.repository, exact.wildcard) == ("library/nginx", False)
