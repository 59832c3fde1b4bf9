"""Classification of a tool call into the sensitive categories (pure).

Sources, combined (every category found is reported, never only the first):

1. the operator's tool rules: a rule's ``category`` names the tool's category; a rule that allows
   at tier ``low``/``medium`` without a category marks the tool as not sensitive *by itself*;
2. argument inspection, recursively through objects and lists:
   - a URL whose host is not an approved domain -> ``new_network_domain`` (and ``exfiltration``
     when the tool is also declared a sink). A URL is any ``scheme://`` (an ASCII scheme, found
     even right after a non-ASCII letter) and any web scheme (http, https, ws, wss, ftp) followed
     by ``:`` and any slashes or backslashes; the value is also read after NFKC normalisation
     (fullwidth or compatibility lookalikes), and the host is read both as Python and as a WHATWG
     parser would (a backslash ends the authority), every reading needing approval;
   - the one exception: the ``uri`` of a resource read/subscription (the gateway's
     ``resources/read`` decision) on a server whose network profile is ``none`` (it cannot
     connect anywhere) is a resource identifier, not a destination, when its own scheme is not a
     network scheme: ``test://watched-resource`` is not a domain there. Network URLs *inside*
     such an identifier, a ``file:`` URI's path (checked as a path) and every other argument are
     still inspected, and tool calls never get the exception;
   - a path (absolute, ``~``, or containing ``..``) outside the allowlist -> ``file_access``;
   - an amount (a number under a key such as ``amount``/``price``/``total``) above the limit
     -> ``financial``;
   - a key naming a credential (``password``, ``token``, ``secret``, ``api_key``...) with a
     non-empty value -> ``credentials``.
3. unknown means sensitive: a tool no rule mentions is sensitive (category ``exfiltration``, the
   strictest: only an operator channel may approve it).
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import Field

from stockade.models import Category, Decision, Frozen, RiskTier, ToolCall
from stockade.policy import Policy, domain_matches
from stockade.textsafe import safe_text

__all__ = [
    "NETWORK_SCHEMES",
    "RESOURCE_TOOL",
    "Classification",
    "ClassifierRules",
    "classify",
    "rules_from_policy",
]

_AMOUNT_KEYS = re.compile(r"(?i)(amount|price|total|sum|value|cost|payment|transfer|fee)")
_CRED_KEYS = re.compile(r"(?i)(passw|secret|token|api[_-]?key|credential|private[_-]?key|otp)")
# ASCII classes only (re.ASCII): a scheme starts after anything but a scheme character, so a
# non-ASCII letter right before "https://" does not hide the URL (``\b`` would).
_URL = re.compile(r"(?<![a-z0-9+.\-])[a-z][a-z0-9+.\-]*://[^\s\"'<>]+", re.I | re.A)
# WHATWG parsers accept a web scheme with any number of slashes or backslashes, or none.
_WEB = re.compile(
    r"(?<![a-z0-9+.\-])(?:https?|wss?|ftp):[\\/]*[^\s\"'<>\\/][^\s\"'<>]*", re.I | re.A
)
_WEB_SCHEMES = ("http", "https", "ws", "wss", "ftp")
_SCHEME = re.compile(r"([a-z][a-z0-9+.\-]*):", re.I | re.A)
# The tool name under which the gateway decides resources/read, subscribe and unsubscribe (tool
# names cannot contain "/", so no server tool can be named this).
RESOURCE_TOOL = "resources/read"
# Schemes that name a network destination; a compound scheme (``git+ssh``) counts when any part
# does. Only used to decide whether a resource identifier can lose the new-domain category.
_NETWORK_SCHEME_NAMES = (
    "http https ws wss ftp ftps sftp ssh scp git svn rsync telnet gopher ldap ldaps smb cifs "
    "nfs dav davs webdav rtsp rtmp irc ircs mqtt mqtts nntp news dict tftp redis rediss mongodb "
    "postgres postgresql mysql amqp amqps imap imaps pop pop3 pop3s smtp smtps xmpp sip sips "
    "dns doh s3 gs hdfs jdbc grpc grpcs tcp udp tls ssl socks socks4 socks5 unix ipp mms wais"
)
NETWORK_SCHEMES = frozenset(_NETWORK_SCHEME_NAMES.split())
_MAX_NODES = 10_000


class ClassifierRules(Frozen):
    """What the operator declared; built from a policy by :func:`rules_from_policy`."""

    tool_categories: dict[str, Category] = Field(default_factory=dict)
    safe_tools: tuple[str, ...] = ()
    sinks: tuple[str, ...] = ()
    approved_domains: tuple[str, ...] = ()
    path_allowlist: tuple[str, ...] = ()
    amount_limit: float = 0.0
    # False only when the server's policy says ``network: none`` (unknown servers: True, strict)
    network: bool = True


class Classification(Frozen):
    categories: tuple[Category, ...]
    reasons: tuple[str, ...]

    @property
    def sensitive(self) -> bool:
        return bool(self.categories)

    def decision(self) -> Decision:
        """``require_approval`` with the first category (by policy order), else ``allow``."""
        if not self.categories:
            return Decision.allow("no sensitive category", rule="classify")
        return Decision.require_approval(
            "; ".join(self.reasons), self.categories[0], rule="classify", tier=RiskTier.HIGH
        )


def rules_from_policy(policy: Policy, server: str) -> ClassifierRules:
    """The classifier rules of ``server`` in ``policy`` (an unknown server has none)."""
    for s in policy.doc.servers:
        if s.name != server:
            continue
        cats: dict[str, Category] = {}
        safe: list[str] = []
        for r in s.tools.rules:
            if r.category is not None:
                cats[r.tool] = r.category
            elif r.action == "allow" and r.tier.rank < RiskTier.HIGH.rank:
                safe.append(r.tool)
        return ClassifierRules(
            tool_categories=cats,
            safe_tools=tuple(safe),
            approved_domains=s.network.domains if s.network.mode == "allowlist" else (),
            # as written (relative) and as the sandbox mounts them (the absolute source path,
            # which is also the target inside the sandbox: what a server's path arguments name)
            path_allowlist=tuple(e.path for e in s.fs_allowlist)
            + tuple(m.source for m in policy.mounts.get(s.name, ())),
            network=s.network.mode != "none",
        )
    return ClassifierRules()


def classify(
    call: ToolCall, rules: ClassifierRules, *, arguments_only: bool = False
) -> Classification:
    """Every sensitive category of ``call``; ``arguments_only`` skips the tool-rule sources
    (declared categories and unknown-is-sensitive) and keeps argument inspection."""
    found: dict[Category, list[str]] = {}

    def add(cat: Category, why: str) -> None:
        found.setdefault(cat, []).append(why)

    tool = safe_text(call.tool, single_line=True, limit=80)
    declared = [
        c for pat, c in rules.tool_categories.items() if fnmatch.fnmatchcase(call.tool, pat)
    ]
    for c in declared if not arguments_only else []:
        add(c, f"tool {tool!r} is declared {c.value}")
    known = bool(declared) or any(fnmatch.fnmatchcase(call.tool, p) for p in rules.safe_tools)
    if not known and not arguments_only:
        add(
            Category.EXFILTRATION,
            f"tool {tool!r} is not covered by any rule (unknown is sensitive)",
        )
    sink = any(fnmatch.fnmatchcase(call.tool, p) for p in rules.sinks)

    def destinations(shown_key: str, text: str) -> None:
        for url, host in _destinations(text):
            if host is None or not any(domain_matches(p, host) for p in rules.approved_domains):
                shown = safe_text(host or url, single_line=True, limit=80)
                add(
                    Category.NEW_NETWORK_DOMAIN,
                    f"argument {shown_key!r}: domain {shown!r} was never approved",
                )
                if sink:
                    add(Category.EXFILTRATION, f"sink tool {tool!r} sends to {shown!r}")

    arguments: Any = call.arguments
    identifier = _resource_identifier(call, rules)
    if identifier is not None:
        scheme, rest = identifier
        arguments = {k: v for k, v in call.arguments.items() if k != "uri"}
        destinations("uri", rest)  # network URLs inside the identifier still count
        if scheme == "file":
            path = unquote(urlsplit(call.arguments["uri"]).path)
            if not _path_allowed(path, rules.path_allowlist):
                shown = safe_text(path, single_line=True, limit=80)
                add(
                    Category.FILE_ACCESS, f"argument 'uri': path {shown!r} is outside the allowlist"
                )
    for key, value in _walk(arguments):
        shown_key = safe_text(key, single_line=True, limit=40)
        if isinstance(value, str):
            destinations(shown_key, value)
            if _looks_like_path(value) and not _path_allowed(value, rules.path_allowlist):
                shown = safe_text(value, single_line=True, limit=80)
                add(
                    Category.FILE_ACCESS,
                    f"argument {shown_key!r}: path {shown!r} is outside the allowlist",
                )
            if _CRED_KEYS.search(key) and value:
                add(Category.CREDENTIALS, f"argument {shown_key!r} looks like a credential")
        elif (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and _AMOUNT_KEYS.search(key)
            and abs(value) > rules.amount_limit
        ):
            add(Category.FINANCIAL, f"argument {shown_key!r} is an amount ({value!r})")
    order = [c for c in Category if c in found]
    return Classification(
        categories=tuple(order), reasons=tuple(w for c in order for w in found[c])
    )


def _walk(value: Any, key: str = "", depth: int = 0) -> Iterator[tuple[str, Any]]:
    stack: list[tuple[str, Any, int]] = [(key, value, depth)]
    seen = 0
    while stack:
        k, v, d = stack.pop()
        seen += 1
        if seen > _MAX_NODES or d > 64:
            # Too large to inspect fully: report a value that is always sensitive.
            yield "arguments", "file:///<arguments too large to inspect>"
            return
        if isinstance(v, dict):
            stack.extend((str(kk), vv, d + 1) for kk, vv in v.items())
        elif isinstance(v, list | tuple):
            stack.extend((k, vv, d + 1) for vv in v)
        else:
            yield k, v


def _resource_identifier(call: ToolCall, rules: ClassifierRules) -> tuple[str, str] | None:
    """(lowercase scheme, the rest after ``scheme:``) when ``call`` reads or watches a resource
    of a server without network whose URI scheme is not a network scheme; else None (strict)."""
    uri = call.arguments.get("uri")
    if call.tool != RESOURCE_TOOL or rules.network or not isinstance(uri, str):
        return None
    m = _SCHEME.match(uri)
    if m is None:
        return None
    scheme = m.group(1).lower()
    if any(part in NETWORK_SCHEMES for part in re.split(r"[+.\-]", scheme)):
        return None
    if scheme == "file":
        try:
            remote = urlsplit(uri).netloc.lower() not in ("", "localhost")
        except ValueError:
            return None
        if remote:
            return None  # a remote file host (SMB and the like): still a destination
    return scheme, uri[m.end() :]


def _destinations(text: str) -> Iterator[tuple[str, str | None]]:
    """Every (url, host) in ``text`` and in its NFKC form; a URL whose host two parsers read
    differently yields each reading; ``None`` for a URL without a readable host."""
    texts = [text]
    folded = unicodedata.normalize("NFKC", text)
    if folded != text:
        texts.append(folded)
    seen: set[tuple[str, str | None]] = set()
    for t in texts:
        for url in [*_URL.findall(t), *_WEB.findall(t)]:
            for host in _hosts(url):
                if (url, host) not in seen:
                    seen.add((url, host))
                    yield url, host


def _hosts(url: str) -> set[str | None]:
    """The host as Python reads it and as a WHATWG parser would (``\\`` ends the authority,
    slashes after the scheme are optional for web schemes)."""
    out: set[str | None] = set()
    try:
        out.add(urlsplit(url).hostname or None)
    except ValueError:
        out.add(None)
    scheme, _, rest = url.partition(":")
    if scheme.lower() in _WEB_SCHEMES:
        rest = rest.lstrip("/\\")
    elif rest[:2] in ("//", "\\\\", "/\\", "\\/"):
        rest = rest[2:]
    else:
        return out
    authority = re.split(r"[/\\?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if authority.startswith("["):
        host = authority[1:].partition("]")[0]
    else:
        host = authority.partition(":")[0]
    out.add(host.lower().rstrip(".") or None)
    return out


def _looks_like_path(value: str) -> bool:
    if "://" in value or "\n" in value or len(value) > 4096:
        return False
    return value.startswith(("/", "~")) or ".." in value.split("/")


def _path_allowed(value: str, allowlist: tuple[str, ...]) -> bool:
    if value.startswith("~"):
        return False
    norm = posixpath.normpath(value)
    if norm.startswith("..") or (
        value.startswith("/") and not any(a.startswith("/") for a in allowlist)
    ):
        return False
    for a in allowlist:
        base = posixpath.normpath(a)
        if norm == base or norm.startswith(base.rstrip("/") + "/"):
            return True
    return False
