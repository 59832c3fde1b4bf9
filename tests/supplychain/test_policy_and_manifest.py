"""Policy models refuse unsafe shapes; manifests parse strictly; the package API is curated."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

import stockade.supplychain as sc
from stockade.supplychain import (
    IdentityMatcher,
    Platform,
    ReferenceMatch,
    RegistryError,
    SignatureRule,
    parse_manifest,
    select_platform,
)

from .fakelog import new_p256, public_pem

PUB = public_pem(new_p256()).decode()


@pytest.mark.guarantee("image-missing-trust-material")
@pytest.mark.parametrize(
    "kwargs",
    [
        {},  # neither keys nor certificate roots
        {"public_keys": ("not a key",)},
        {"public_keys": (PUB,), "identities": (IdentityMatcher(subject="a", issuer="b"),)},
        {"certificate_roots": ("not a cert",), "identities": ()},
        {"public_keys": (PUB,), "require_tlog": True},  # a log check without a log key
    ],
)
def test_signature_rules_refuse_incomplete_or_unreadable_trust(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        SignatureRule(name="r", **kwargs)  # type: ignore[arg-type]


def test_identity_matchers_need_one_subject_and_compile_their_regexes() -> None:
    with pytest.raises(ValidationError):
        IdentityMatcher(issuer="x")
    with pytest.raises(ValidationError):
        IdentityMatcher(subject="a", subject_regex="a")
    with pytest.raises(ValidationError):
        IdentityMatcher(subject_regex="(", issuer="x")
    m = IdentityMatcher(subject_regex=r"a.c", issuer_regex=r"https://x\.example")
    assert m.subject_matches(("abc",))
    assert not m.subject_matches(("abcd",))  # anchored at the end
    assert not m.subject_matches(("zabc",))  # anchored at the start
    assert not m.issuer_matches("https://x.example.evil")
    assert not m.issuer_matches(None)


def test_remap_needs_both_prefixes() -> None:
    with pytest.raises(ValidationError):
        ReferenceMatch(mode="remap", prefix="a.example/x")
    with pytest.raises(ValidationError):
        ReferenceMatch(prefix="a.example/x", signed_prefix="b.example/x")


def _index(*platforms: tuple[str, str]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": "sha256:" + str(i) * 64,
                    "size": 10,
                    "platform": {"os": os_, "architecture": arch},
                }
                for i, (os_, arch) in enumerate(platforms)
            ],
        }
    ).encode()


def test_platform_selection_picks_exactly_one_entry() -> None:
    index = parse_manifest(_index(("linux", "amd64"), ("linux", "arm64")))
    assert select_platform(index, Platform(architecture="arm64")).digest == "sha256:" + "1" * 64
    with pytest.raises(RegistryError, match="got 0 matching"):
        select_platform(index, Platform(os="windows"))
    twice = parse_manifest(_index(("linux", "amd64"), ("linux", "amd64")))
    with pytest.raises(RegistryError, match="got 2 matching"):
        select_platform(twice, Platform())


def test_the_package_exports_a_curated_sorted_api() -> None:
    assert sc.__all__ == sorted(sc.__all__, key=lambda n: (not n.isupper(), n))
    for name in sc.__all__:
        assert getattr(sc, name) is not None
    assert not [n for n in sc.__all__ if n.startswith("_")]
