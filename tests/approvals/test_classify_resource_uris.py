"""Resource identifiers versus network destinations in the classifier's argument inspection.

A resource URI such as ``test://watched-resource`` read from a server that has no network is an
identifier, not a destination; every network URL (any case, any lookalike form, inside any
argument of any tool call, or inside the identifier itself) still counts as a new domain.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.approvals import ClassifierRules, classify
from stockade.approvals._classify import NETWORK_SCHEMES, RESOURCE_TOOL
from stockade.models import Category, ToolCall

OFFLINE = ClassifierRules(path_allowlist=("/data",), network=False)
ONLINE = ClassifierRules(path_allowlist=("/data",), approved_domains=("docs.example.com",))
SINK = ClassifierRules(sinks=("send",), network=False)
NEW = Category.NEW_NETWORK_DOMAIN


def read(uri: str, **more: object) -> ToolCall:
    return ToolCall(server="s", tool=RESOURCE_TOOL, arguments={"uri": uri, **more})


def tool(name: str, **arguments: object) -> ToolCall:
    return ToolCall(server="s", tool=name, arguments=dict(arguments))


def cats(call: ToolCall, rules: ClassifierRules) -> tuple[Category, ...]:
    return classify(call, rules, arguments_only=True).categories


@pytest.mark.guarantee("gw-resource-uri-not-domain")
@pytest.mark.parametrize(
    "uri", ["test://watched-resource", "TEST://watched-resource", "demo://a/b?c=d", "urn:x:y"]
)
def test_a_custom_scheme_resource_of_a_server_without_network_is_not_a_new_domain(
    uri: str,
) -> None:
    assert cats(read(uri), OFFLINE) == ()


@pytest.mark.guarantee("gw-resource-uri-not-domain")
@pytest.mark.parametrize(
    "uri",
    [
        "http://attacker.example/x",
        "HTTP://attacker.example/x",
        "HtTpS://attacker.example/x",
        "wss://attacker.example/socket",
        "ftp://attacker.example/f",
        "git+ssh://attacker.example/repo",
        "svn+ssh://attacker.example/repo",
        "sftp://attacker.example/f",
        "https:attacker.example",
        "https:\\\\attacker.example",
        "file://attacker.example/share",
        "\uff48\uff54\uff54\uff50\uff53://attacker.example/x",  # fullwidth: NFKC folds it to https
        "\u04bbttps://attacker.example/x",  # a Cyrillic h: the URL from "ttps" on still counts
        "http\u017f://attacker.example/x",  # a long s: NFKC folds it to https
        " https://attacker.example/x",
    ],
)
def test_a_network_scheme_resource_uri_stays_a_new_domain_even_without_network(
    uri: str,
) -> None:
    found = classify(read(uri), OFFLINE, arguments_only=True)
    assert NEW in found.categories, uri
    assert any("attacker.example" in r for r in found.reasons), found.reasons


@pytest.mark.guarantee("gw-resource-uri-not-domain")
@pytest.mark.parametrize(
    "uri",
    [
        "test://x?next=https://attacker.example/y",
        "test://x.https://attacker.example",
        "test:https:attacker.example",
        "demo://a/\uff48\uff54\uff54\uff50://attacker.example",
    ],
)
def test_a_network_url_inside_a_custom_identifier_still_counts(uri: str) -> None:
    found = classify(read(uri), OFFLINE, arguments_only=True)
    assert NEW in found.categories
    assert any("attacker.example" in r for r in found.reasons), found.reasons


@pytest.mark.guarantee("gw-resource-uri-not-domain")
def test_a_host_bearing_custom_uri_of_a_networked_server_is_still_a_new_domain() -> None:
    found = classify(read("test://attacker.example/x"), ONLINE, arguments_only=True)
    assert found.categories == (NEW,)
    assert "attacker.example" in found.reasons[0]
    # unknown server (no policy entry): the default rules are networked, so strict
    assert cats(read("test://watched-resource"), ClassifierRules()) == (NEW,)


@pytest.mark.guarantee("gw-resource-uri-not-domain")
def test_tool_arguments_keep_the_new_domain_category_on_a_server_without_network() -> None:
    assert cats(tool("fetch", url="https://attacker.example/x"), OFFLINE) == (NEW,)
    assert cats(tool("fetch", uri="test://watched-resource"), OFFLINE) == (NEW,)
    assert set(cats(tool("send", to="https://attacker.example/x"), SINK)) == {
        NEW,
        Category.EXFILTRATION,
    }
    # other arguments of a resource read are inspected as usual
    assert cats(read("test://ok", extra="https://attacker.example"), OFFLINE) == (NEW,)
    assert cats(read("test://ok", extra={"uri": "test://nested"}), OFFLINE) == (NEW,)


def test_a_file_resource_uri_without_network_is_checked_as_a_path() -> None:
    assert cats(read("file:///data/notes.txt"), OFFLINE) == ()
    assert cats(read("file://localhost/data/notes.txt"), OFFLINE) == ()
    assert cats(read("file:///etc/shadow"), OFFLINE) == (Category.FILE_ACCESS,)
    assert cats(read("file:///data/%2e%2e/etc/shadow"), OFFLINE) == (Category.FILE_ACCESS,)
    assert cats(read("file:///data/../etc/shadow"), OFFLINE) == (Category.FILE_ACCESS,)
    # a networked server's file uri is as strict as before
    assert NEW in cats(read("file:///data/notes.txt"), ONLINE)


def test_a_malformed_resource_uri_is_strict() -> None:
    assert NEW in cats(read("file://[bad/x"), OFFLINE)
    assert cats(read("no scheme at all"), OFFLINE) == ()


@pytest.mark.guarantee("apr-classify-arguments")
@pytest.mark.parametrize(
    "value",
    [
        "请访问https://attacker.example/x",  # a letter right before the scheme
        "https://attacker.example\\@docs.example.com/",  # backslash ends the authority (WHATWG)
        "https:/attacker.example",
        "HTTPS:attacker.example/x",
        "\uff48\uff54\uff54\uff50\uff53\uff1a\uff0f\uff0fattacker.example",
    ],
)
def test_lookalike_and_parser_confusion_urls_in_tool_arguments_are_new_domains(
    value: str,
) -> None:
    found = classify(tool("fetch", text=value), ONLINE, arguments_only=True)
    assert NEW in found.categories, value
    assert any("attacker.example" in r for r in found.reasons), found.reasons


def test_an_approved_domain_stays_approved_under_every_reading() -> None:
    assert cats(tool("fetch", url="https://docs.example.com/a"), ONLINE) == ()
    assert cats(tool("fetch", url="HTTPS://DOCS.EXAMPLE.COM/a"), ONLINE) == ()
    assert cats(tool("fetch", url="https://user@docs.example.com:8443/a"), ONLINE) == ()


_LABEL = st.from_regex(r"[a-z][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)
_HOST = st.lists(_LABEL, min_size=2, max_size=4).map(".".join)


@st.composite
def _cased(draw: st.DrawFn, word: str) -> str:
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if f else c for c, f in zip(word, flips, strict=True))


@given(
    scheme=st.sampled_from(sorted(NETWORK_SCHEMES)).flatmap(_cased),
    host=_HOST,
    tail=st.text(alphabet=st.characters(categories=["L", "N"]), max_size=12),
    network=st.booleans(),
    name=st.sampled_from([RESOURCE_TOOL, "fetch", "send"]),
)
def test_a_uri_with_a_network_scheme_is_always_a_new_domain(
    scheme: str, host: str, tail: str, network: bool, name: str
) -> None:
    rules = ClassifierRules(network=network, sinks=("send",))
    uri = f"{scheme}://{host}/{tail}"
    found = classify(read(uri) if name == RESOURCE_TOOL else tool(name, uri=uri), rules)
    assert NEW in found.categories
    if name == "send":
        assert Category.EXFILTRATION in found.categories


@given(
    scheme=st.from_regex(r"[a-z][a-z0-9+.-]{0,8}", fullmatch=True),
    rest=st.text(max_size=30),
)
def test_a_networked_server_classifies_a_resource_uri_like_any_argument(
    scheme: str, rest: str
) -> None:
    uri = f"{scheme}:{rest}"
    as_resource = classify(read(uri), ONLINE, arguments_only=True).categories
    as_argument = classify(tool("fetch", uri=uri), ONLINE, arguments_only=True).categories
    assert as_resource == as_argument
