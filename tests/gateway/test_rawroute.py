"""The raw-uri routing rule: a raw resource uri goes to the one server that offered it, else is
refused (unknown, or offered by several servers); templates match their expansions only."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.gateway import RawUriError, ResourceOffer, route_raw, template_matches
from stockade.gateway._rawroute import route_raw_or_unlisted

DOC = "demo://resource/static/document/a.md"


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_uri_one_server_listed_routes_to_that_server() -> None:
    offers = {
        "docs": ResourceOffer(uris=frozenset({DOC})),
        "mail": ResourceOffer(uris=frozenset({"mail://inbox"})),
    }
    assert route_raw(DOC, offers) == "docs"
    assert route_raw("mail://inbox", offers) == "mail"


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_uri_two_servers_offer_is_refused_naming_both() -> None:
    offers = {
        "a": ResourceOffer(uris=frozenset({DOC})),
        "b": ResourceOffer(uris=frozenset({DOC})),
    }
    with pytest.raises(RawUriError) as e:
        route_raw(DOC, offers)
    assert "several servers (a, b)" in e.value.what
    assert e.value.fix


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_an_exact_offer_and_another_servers_matching_template_are_ambiguous() -> None:
    offers = {
        "a": ResourceOffer(uris=frozenset({DOC})),
        "b": ResourceOffer(templates=("demo://resource/static/document/{name}",)),
    }
    with pytest.raises(RawUriError, match="several servers"):
        route_raw(DOC, offers)


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_uri_nobody_offered_is_refused_as_unknown() -> None:
    offers = {"docs": ResourceOffer(uris=frozenset({DOC}))}
    for uri in ["test://watched-resource", DOC + "x", "demo://resource/static/document", ""]:
        with pytest.raises(RawUriError, match=r"unknown|not routable"):
            route_raw(uri, offers)
    with pytest.raises(RawUriError, match="unknown"):
        route_raw(DOC, {})


def test_unknown_uris_are_shown_neutralised_in_the_refusal() -> None:
    with pytest.raises(RawUriError) as e:
        route_raw("x://\x1b]0;pwned\x07", {})
    assert "\x1b" not in e.value.what
    assert "\x07" not in e.value.what


@pytest.mark.guarantee("gw-raw-uri-one-server")
def test_a_template_routes_its_expansions_and_nothing_beyond_them() -> None:
    offers = {"dyn": ResourceOffer(templates=("demo://resource/dynamic/text/{resourceId}",))}
    assert route_raw("demo://resource/dynamic/text/7", offers) == "dyn"
    for uri in [
        "demo://resource/dynamic/text/7/../../secret",
        "demo://resource/dynamic/blob/7",
        "xdemo://resource/dynamic/text/7",
        "demo://resource/dynamic/text/7?x=1",
    ]:
        with pytest.raises(RawUriError):
            route_raw(uri, offers)


def test_template_operators_and_unparseable_templates() -> None:
    assert template_matches("file:///{+path}", "file:///a/b/c.txt")
    assert template_matches("search://q{?term,page}", "search://q?term=a&page=2")
    assert template_matches("search://q{?term}", "search://q")
    assert template_matches("a://x{/seg}", "a://x/1/2")
    assert not template_matches("a://{broken", "a://{broken")  # not understood: matches nothing
    assert not template_matches("a://{x}}", "a://1}")
    assert not template_matches("a://" + "b" * 2000 + "{x}", "a://" + "b" * 2000 + "1")
    assert template_matches("a://.*{x}", "a://.*1")  # literals are literal, not regex
    assert not template_matches("a://.*{x}", "a://zz1")


segment = st.text(
    st.characters(blacklist_characters="/?#{}", blacklist_categories=("Cs", "Zs", "Cc")),
    max_size=12,
)
literal = st.text(
    st.characters(blacklist_characters="{}", blacklist_categories=("Cs", "Cc")), max_size=20
)


@given(prefix=literal, suffix=literal, value=segment)
def test_a_simple_template_matches_every_one_segment_expansion(
    prefix: str, suffix: str, value: str
) -> None:
    assert template_matches(f"{prefix}{{v}}{suffix}", f"{prefix}{value}{suffix}")


@given(
    uri=st.text(max_size=60),
    names=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
)
def test_routing_succeeds_exactly_when_one_server_offers_the_uri(
    uri: str, names: list[str]
) -> None:
    offers = {n: ResourceOffer(uris=frozenset({uri})) for n in names}
    offers["other"] = ResourceOffer(uris=frozenset({uri + "-other"}))
    if len(names) == 1 and uri:
        assert route_raw(uri, offers) == names[0]
    else:
        with pytest.raises(RawUriError):
            route_raw(uri, offers)


# -- the operator's opt-in: unlisted uris routed to the one opted-in server ----------------------

WATCHED = "test://watched-resource"


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_unlisted_uri_goes_to_the_one_server_that_opts_in() -> None:
    offers = {"docs": ResourceOffer(uris=frozenset({DOC})), "ev": ResourceOffer()}
    assert route_raw_or_unlisted(WATCHED, offers, frozenset({"ev"})) == ("ev", True)


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_unlisted_uri_with_two_opted_in_servers_is_refused_as_ambiguous() -> None:
    with pytest.raises(RawUriError) as e:
        route_raw_or_unlisted(WATCHED, {}, frozenset({"a", "b"}))
    assert "several servers opt in to unlisted uris (a, b)" in e.value.what
    assert e.value.fix


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_unlisted_uri_without_any_opt_in_is_refused_as_unknown() -> None:
    with pytest.raises(RawUriError) as e:
        route_raw_or_unlisted(WATCHED, {"docs": ResourceOffer(uris=frozenset({DOC}))}, frozenset())
    assert "no server offered it" in e.value.what


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_offered_uri_still_goes_to_the_offering_server_not_the_opted_in_one() -> None:
    offers = {"docs": ResourceOffer(uris=frozenset({DOC})), "ev": ResourceOffer()}
    assert route_raw_or_unlisted(DOC, offers, frozenset({"ev"})) == ("docs", False)
    tpl = {"docs": ResourceOffer(templates=("demo://resource/{id}",)), "ev": ResourceOffer()}
    assert route_raw_or_unlisted("demo://resource/7", tpl, frozenset({"ev"})) == ("docs", False)


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_a_uri_offered_by_two_servers_stays_ambiguous_despite_an_opt_in() -> None:
    offers = {"a": ResourceOffer(uris=frozenset({DOC})), "b": ResourceOffer(uris=frozenset({DOC}))}
    with pytest.raises(RawUriError) as e:
        route_raw_or_unlisted(DOC, offers, frozenset({"a"}))
    assert "several servers (a, b)" in e.value.what


@pytest.mark.guarantee("gw-raw-uri-unlisted-opt-in")
def test_an_empty_or_huge_uri_is_refused_even_with_an_opt_in() -> None:
    for bad in ("", "x://" + "a" * 5000):
        with pytest.raises(RawUriError):
            route_raw_or_unlisted(bad, {}, frozenset({"ev"}))


@given(st.text(min_size=1, max_size=60), st.frozensets(st.sampled_from("abc"), max_size=3))
def test_an_unlisted_route_is_always_the_single_opted_in_server(
    uri: str, opted: frozenset[str]
) -> None:
    try:
        server, unlisted = route_raw_or_unlisted(uri, {}, opted)
    except RawUriError:
        assert len(opted) != 1
    else:
        assert unlisted
        assert {server} == opted
