"""Image references follow the distribution reference grammar exactly, and pin only by digest."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from stockade.models import PinnedImage
from stockade.supplychain import ImageReference, ImageReferenceError, parse_reference

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("nginx", "docker.io", "library/nginx", None, None),
        ("nginx:1.25", "docker.io", "library/nginx", "1.25", None),
        ("docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/nginx", "docker.io", "library/nginx", None, None),
        ("index.docker.io/acme/tool", "docker.io", "acme/tool", None, None),
        ("acme/tool:v1", "docker.io", "acme/tool", "v1", None),
        ("docker.io/library/nginx", "docker.io", "library/nginx", None, None),
        ("localhost/foo", "localhost", "foo", None, None),
        ("localhost:5000/foo/bar:t", "localhost:5000", "foo/bar", "t", None),
        ("127.0.0.1:5000/a", "127.0.0.1:5000", "a", None, None),
        ("[::1]:5000/a/b", "[::1]:5000", "a/b", None, None),
        ("ghcr.io/acme/team/tool@" + D, "ghcr.io", "acme/team/tool", None, D),
        ("ghcr.io/acme/tool:v1@" + D, "ghcr.io", "acme/tool", "v1", D),
        ("Registry.Example.com/a", "Registry.Example.com", "a", None, None),
        ("Foo/bar", "Foo", "bar", None, None),  # upper case first element is a registry
        ("a__b/c--d/e.f_g", "docker.io", "a__b/c--d/e.f_g", None, None),
        ("foo:5000", "docker.io", "library/foo", "5000", None),  # no slash: 5000 is a tag
        ("x/y:_T.a-g", "docker.io", "x/y", "_T.a-g", None),
    ],
)
def test_valid_references_parse_and_normalise_like_the_docker_cli(
    text: str, registry: str, repository: str, tag: str | None, digest: str | None
) -> None:
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Nginx",  # upper case repository on docker.io
        "acme/Tool",
        "ghcr.io/Acme/tool",
        "f" * 64,  # a bare image id
        "foo:",
        "foo@",
        ":tag",
        "/foo",
        "foo/",
        "foo//bar",
        "foo/-bar",
        "foo/bar-",
        "foo/b___r",
        "foo/.bar",
        "foo:tag:tag",
        "foo:-tag",
        "foo:" + "t" * 129,
        "foo@sha256:abc",
        "foo@sha256:" + "A" * 64,  # upper-case hex
        "foo@md5:" + "a" * 32,  # unknown algorithm
        "foo@sha256:" + "a" * 63,
        "foo@sha512:" + "a" * 64,  # wrong length for sha512
        "-host.com/foo",
        "host-.com/foo",
        "host.com:port/foo",
        "[::1/foo",
        "foo bar",
        "foo/bar\n",
        "ghcr.io/" + "a" * 250,  # name longer than 255
        "\uff46\uff4f\uff4f",  # full-width look-alikes
        "foo/bär",
    ],
)
def test_invalid_references_are_rejected_with_a_reason(text: str) -> None:
    with pytest.raises(ImageReferenceError) as err:
        parse_reference(text)
    assert err.value.what
    assert err.value.fix


def test_name_of_exactly_255_characters_is_accepted_and_256_is_not() -> None:
    ok = "ghcr.io/" + "a" * (255 - len("ghcr.io/"))
    assert parse_reference(ok).name == ok
    with pytest.raises(ImageReferenceError, match="at most 255"):
        parse_reference(ok + "a")


@pytest.mark.guarantee("image-reject-unpinned")
def test_a_tag_only_reference_cannot_become_a_pinned_image() -> None:
    with pytest.raises(ImageReferenceError, match="not pinned"):
        parse_reference("ghcr.io/acme/tool:v1").pinned()


@pytest.mark.guarantee("image-reject-unpinned")
def test_a_digest_reference_becomes_a_pinned_image_with_sha256() -> None:
    pinned = parse_reference("ghcr.io/acme/tool:v1@" + D).pinned()
    assert pinned == PinnedImage(registry="ghcr.io", repository="acme/tool", digest=D, tag="v1")
    with pytest.raises(ImageReferenceError, match="expected sha256"):
        parse_reference("ghcr.io/acme/tool@sha512:" + "a" * 128).pinned()


def test_the_model_refuses_values_the_parser_would_refuse() -> None:
    with pytest.raises(ValidationError):
        ImageReference(registry="docker.io", repository="nginx")  # needs library/
    with pytest.raises(ValidationError):
        ImageReference(registry="ghcr.io", repository="Acme/tool")
    with pytest.raises(ValidationError):
        ImageReference(registry="ghcr.io", repository="a", digest="sha256:xyz")
    assert ImageReference(registry="index.docker.io", repository="a/b").registry == "docker.io"


# --- property tests ---------------------------------------------------------------------------

_alnum = st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)
_sep = st.sampled_from([".", "_", "__", "-", "--"])
_component = st.builds(
    lambda first, rest: first + "".join(s + a for s, a in rest),
    _alnum,
    st.lists(st.tuples(_sep, _alnum), max_size=2),
)
_path = st.lists(_component, min_size=2, max_size=4).map("/".join)
_host = st.one_of(
    st.from_regex(r"[a-z0-9]([a-z0-9-]{0,5}[a-z0-9])?(\.[a-z0-9]{1,5}){1,2}", fullmatch=True),
    st.just("localhost"),
    st.from_regex(r"127\.0\.0\.[0-9]{1,3}", fullmatch=True),
    st.just("[::1]"),
)
_registry = st.builds(
    lambda h, p: h + (f":{p}" if p is not None else ""),
    _host,
    st.one_of(st.none(), st.integers(1, 65535)),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
_digest = st.from_regex(r"[0-9a-f]{64}", fullmatch=True).map(lambda h: "sha256:" + h)
_canonical = st.builds(
    lambda r, p, t, d: r + "/" + p + (f":{t}" if t else "") + (f"@{d}" if d else ""),
    _registry,
    _path,
    st.one_of(st.none(), _tag),
    st.one_of(st.none(), _digest),
)


@given(_canonical)
def test_format_of_parse_is_the_identity_on_canonical_references(text: str) -> None:
    assert str(parse_reference(text)) == text


@given(_canonical)
def test_parse_of_format_round_trips(text: str) -> None:
    ref = parse_reference(text)
    assert parse_reference(str(ref)) == ref


@given(st.text(max_size=80))
def test_arbitrary_text_either_parses_to_a_valid_reference_or_is_rejected(text: str) -> None:
    try:
        ref = parse_reference(text)
    except ImageReferenceError:
        return
    assert parse_reference(str(ref)) == ref
    assert ref.repository == ref.repository.lower()


@given(_canonical, st.sampled_from(["A", " ", "@", ":", "\x00", "*", "..", "//"]))
def test_injecting_a_forbidden_character_into_the_repository_is_rejected(
    text: str, bad: str
) -> None:
    ref = parse_reference(text)
    mangled = f"{ref.registry}/{ref.repository}{bad}x" if bad != "//" else f"{ref.name}//x"
    if bad in {"@", ":"}:
        mangled = f"{ref.name}{bad}"
    with pytest.raises(ImageReferenceError):
        parse_reference(mangled)
