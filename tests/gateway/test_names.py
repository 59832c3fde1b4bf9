"""Tool name namespacing: server__tool, no collisions, no shadowing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stockade.gateway import Namespace, NamespaceError, qualify, split

servers = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True).filter(
    lambda s: "__" not in s
)
tools = st.from_regex(r"[A-Za-z0-9_.-]{1,20}", fullmatch=True)


@given(servers, tools)
def test_qualify_and_split_are_inverse(server: str, tool: str) -> None:
    assert split(qualify(server, tool)) == (server, tool)


@pytest.mark.parametrize("server", ["", "A", "a__b", "a_b", "-a", "a" * 40, "ünï"])
def test_bad_server_names_are_refused(server: str) -> None:
    with pytest.raises(NamespaceError):
        qualify(server, "echo")


@pytest.mark.parametrize("tool", ["", "a b", "a/b", "x" * 65, "e\u200bcho", "echo\n"])
def test_bad_tool_names_are_refused(tool: str) -> None:
    with pytest.raises(NamespaceError):
        qualify("s", tool)


@pytest.mark.guarantee("gw-namespace-no-collision")
def test_the_same_name_twice_is_refused() -> None:
    ns = Namespace()
    ns.add("a", "echo")
    ns.add("b", "echo")
    with pytest.raises(NamespaceError):
        ns.add("a", "echo")
    assert ns.names() == ["a__echo", "b__echo"]


@pytest.mark.guarantee("gw-namespace-no-collision")
def test_a_tool_cannot_pose_as_another_servers_tool() -> None:
    # server "a" offering tool "b__echo" yields "a__b__echo", which resolves to server "a"
    assert split(qualify("a", "b__echo")) == ("a", "b__echo")


@pytest.mark.parametrize("name", ["echo", "__echo", "a__", ""])
def test_unqualified_names_do_not_split(name: str) -> None:
    with pytest.raises(NamespaceError):
        split(name)
