"""The top-level ``kubernetes:`` section: the egress proxy's image is pinned by digest and comes
from a registry the policy lists, strict like every other section; without the section the
effective hash is what it was."""

from __future__ import annotations

import pytest
from _policy_helpers import MINIMAL, Writer, messages, valid

PROXY = "ghcr.io/acme/stockade@sha256:" + "7e" * 32
LISTED = MINIMAL.replace("default: deny\n", "default: deny\nregistries: [ghcr.io/acme/*]\n")


def _with(image: str, base: str = LISTED) -> str:
    return base + f"kubernetes:\n  egress_proxy_image: {image}\n"


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
def test_a_digest_pinned_proxy_image_from_a_listed_registry_loads(check: Writer) -> None:
    policy = valid(check(_with(PROXY)))
    assert policy.doc.kubernetes is not None
    assert policy.doc.kubernetes.egress_proxy_image == PROXY


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
@pytest.mark.parametrize(
    "image", ["ghcr.io/acme/stockade:v1", "ghcr.io/acme/stockade", "ghcr.io/acme/stockade:latest"]
)
def test_a_proxy_image_without_a_digest_is_an_error_naming_the_pin(
    check: Writer, image: str
) -> None:
    result = check(_with(image))
    assert not result.ok
    (msg,) = messages(result)
    assert "egress_proxy_image" in msg
    assert "not pinned by digest" in msg


@pytest.mark.guarantee("k8s-egress-proxy-image-checked")
def test_a_proxy_image_from_an_unlisted_registry_is_an_error_at_its_line(check: Writer) -> None:
    text = _with("docker.io/evil/stockade@sha256:" + "7e" * 32)
    result = check(text)
    assert not result.ok
    (msg,) = messages(result)
    assert "not in the registries allowlist" in msg
    line = text.splitlines().index(
        "  egress_proxy_image: docker.io/evil/stockade@sha256:" + "7e" * 32
    )
    assert result.errors[0].line == line + 1


def test_a_proxy_image_with_no_registries_at_all_is_an_error(check: Writer) -> None:
    result = check(_with(PROXY, base=MINIMAL))
    assert not result.ok
    assert "not in the registries allowlist" in messages(result)[0]


@pytest.mark.parametrize(
    "section",
    [
        "kubernetes:\n  egress_proxy: " + PROXY + "\n",  # unknown key
        "kubernetes:\n  egress_proxy_image: 'ghcr.io/acme/stockade@sha256:abc'\n",
        "kubernetes:\n  egress_proxy_image: ''\n",
        "kubernetes: " + PROXY + "\n",
    ],
)
def test_a_malformed_kubernetes_section_is_an_error(check: Writer, section: str) -> None:
    result = check(LISTED + section)
    assert not result.ok
    assert messages(result)


def test_no_section_leaves_the_effective_hash_as_it_was_and_the_section_changes_it(
    check: Writer,
) -> None:
    plain = valid(check(LISTED))
    assert plain.doc.kubernetes is None
    assert "kubernetes" not in plain.doc.model_dump(mode="json")
    empty = valid(check(LISTED + "kubernetes: {}\n"))
    with_image = valid(check(_with(PROXY)))
    assert with_image.effective_hash != plain.effective_hash
    assert empty.effective_hash != with_image.effective_hash
