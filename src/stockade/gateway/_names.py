"""Tool name namespacing: ``<server>__<tool>``, with collisions and shadowing rejected."""

from __future__ import annotations

import re

from ._errors import NamespaceError

__all__ = ["SEPARATOR", "Namespace", "qualify", "split"]

SEPARATOR = "__"
_SERVER = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
_TOOL = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def qualify(server: str, tool: str) -> str:
    """The agent-visible name of ``tool`` on ``server``; refuses names that cannot be split back."""
    if not _SERVER.fullmatch(server):
        raise NamespaceError(
            f"server name {server!r} is not namespaceable",
            "use 1-32 lowercase letters, digits and single hyphens (no '__')",
        )
    if not _TOOL.fullmatch(tool):
        raise NamespaceError(
            f"tool name {tool[:80]!r} on server {server!r} is not acceptable",
            "tool names must be 1-64 characters of letters, digits, '_', '.', '-'",
        )
    return f"{server}{SEPARATOR}{tool}"


def split(name: str) -> tuple[str, str]:
    """Inverse of :func:`qualify`; the server part never contains the separator."""
    server, sep, tool = name.partition(SEPARATOR)
    if not sep or not server or not tool:
        raise NamespaceError(
            f"tool name {name[:80]!r} has no server prefix",
            f"call tools by their namespaced name '<server>{SEPARATOR}<tool>' from tools/list",
        )
    return server, tool


class Namespace:
    """The set of exposed names; adding a name twice (collision/shadowing) is refused."""

    def __init__(self) -> None:
        self._owner: dict[str, tuple[str, str]] = {}

    def add(self, server: str, tool: str) -> str:
        name = qualify(server, tool)
        if name in self._owner:
            raise NamespaceError(
                f"tool {name!r} is offered twice (already by {self._owner[name][0]!r})",
                "a server may not list the same tool name twice; fix the server or drop it",
            )
        self._owner[name] = (server, tool)
        return name

    def resolve(self, name: str) -> tuple[str, str] | None:
        return self._owner.get(name)

    def names(self) -> list[str]:
        return sorted(self._owner)
