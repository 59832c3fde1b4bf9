"""Which downstream server a raw (non-gateway) resource URI belongs to: the one server, and only
that one, that offered it to this client (in ``resources/list`` or through one of its
``resources/templates/list`` templates). Pure: no sessions, no I/O; the caller collects offers.

Two servers offering the same URI, or none, is refused: the gateway never guesses a server, so
one server's URI never reaches another server. The one exception is an operator's explicit opt-in
(``resources: {unlisted_uris: route}`` on a server): a URI that *no* server offered goes to the
single opted-in server whose policy could allow the read for the client; two are ambiguous and
refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass

from stockade.textsafe import safe_text

from ._errors import NamespaceError

__all__ = [
    "MAX_TEMPLATE",
    "RawUriError",
    "ResourceOffer",
    "route_raw",
    "route_raw_or_unlisted",
    "template_matches",
]

MAX_TEMPLATE = 1000  # longer templates are not matched (never offered through them)
_EXPR = re.compile(r"\{([+#./;?&]?)([A-Za-z0-9_.,%*:]+)\}")


class RawUriError(NamespaceError):
    """A raw resource URI cannot be routed: unknown, offered by several servers, or malformed."""


@dataclass(frozen=True)
class ResourceOffer:
    """What one server offered one client: exact URIs and URI templates (RFC 6570)."""

    uris: frozenset[str] = frozenset()
    templates: tuple[str, ...] = ()


def _pattern(template: str) -> re.Pattern[str] | None:
    if len(template) > MAX_TEMPLATE:
        return None
    out: list[str] = []
    pos = 0
    for m in _EXPR.finditer(template):
        literal = template[pos : m.start()]
        if "{" in literal or "}" in literal:
            return None  # an expression this matcher does not understand: match nothing
        out.append(re.escape(literal))
        op = m.group(1)
        if op in ("+", "#"):  # reserved expansion may span '/'
            out.append(("#" if op == "#" else "") + r"[^\s]*")
        elif op in ("?", "&"):
            out.append(r"(?:[?&][^\s#]*)?")
        elif op in (".", "/", ";"):
            out.append(r"(?:" + re.escape(op) + r"[^/?#\s]*)*")
        else:  # simple expansion: one path segment
            out.append(r"[^/?#\s]*")
        pos = m.end()
    tail = template[pos:]
    if "{" in tail or "}" in tail:
        return None
    out.append(re.escape(tail))
    return re.compile("".join(out))


def template_matches(template: str, uri: str) -> bool:
    """Whether ``uri`` is an expansion of ``template`` (a template whose syntax is not understood
    matches nothing: fail closed)."""
    pattern = _pattern(template)
    return pattern is not None and pattern.fullmatch(uri) is not None


def route_raw(uri: str, offers: Mapping[str, ResourceOffer]) -> str:
    """The server that offered ``uri`` (exactly or by a template); refuse unless exactly one
    server did (an exact offer by one and a template of another is ambiguous too)."""
    if not uri or len(uri) > 4096:
        raise RawUriError(
            f"resource uri of length {len(uri)} is not routable", "use a uri from resources/list"
        )
    owners = sorted(
        name
        for name, offer in offers.items()
        if uri in offer.uris or any(template_matches(t, uri) for t in offer.templates)
    )
    shown = safe_text(uri, single_line=True, limit=80)
    if not owners:
        raise RawUriError(
            f"unknown resource uri {shown!r}: no server offered it to this client",
            "use a uri from resources/list or resources/templates/list",
        )
    if len(owners) > 1:
        raise RawUriError(
            f"resource uri {shown!r} is offered by several servers ({', '.join(owners[:5])})",
            "use the stockade+resource:// uri of the server you mean",
        )
    return owners[0]


def route_raw_or_unlisted(
    uri: str, offers: Mapping[str, ResourceOffer], opted_in: Set[str]
) -> tuple[str, bool]:
    """(server, unlisted): the offering server as :func:`route_raw`; a URI that no server offered
    goes to the one server in ``opted_in`` (servers whose spec sets ``unlisted_uris: route`` and
    whose policy could allow the read for this client). Several offering servers, or several
    opted-in ones, are refused."""
    try:
        return route_raw(uri, offers), False
    except RawUriError:
        if not uri or len(uri) > 4096:
            raise
        offered = any(
            uri in o.uris or any(template_matches(t, uri) for t in o.templates)
            for o in offers.values()
        )
        if offered or len(opted_in) != 1:
            if not offered and len(opted_in) > 1:
                shown = safe_text(uri, single_line=True, limit=80)
                names = ", ".join(sorted(opted_in)[:5])
                raise RawUriError(
                    f"unlisted resource uri {shown!r}: several servers opt in to unlisted uris "
                    f"({names})",
                    "opt in one server only, or use the stockade+resource:// uri of the server",
                ) from None
            raise
        return next(iter(opted_in)), True
