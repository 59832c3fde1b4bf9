"""Grammars and matchers: egress domains, registry patterns, image references, URLs and paths."""

from __future__ import annotations

import ipaddress
import posixpath
import re
from urllib.parse import urlsplit

__all__ = [
    "domain_matches",
    "image_repository",
    "path_under",
    "registry_matches",
    "url_host_allowed",
    "validate_domain_pattern",
    "validate_registry_pattern",
]

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_REPO_PART = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"(?:[a-zA-Z0-9.-]+)(?::[0-9]{1,5})?")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def validate_domain_pattern(pattern: str) -> str:
    """``api.example.com`` (exact) or ``*.example.com`` (subdomains only). Returns it lowercased.

    Refused: IP literals, ``*``, a bare TLD (``com``, ``*.com``), wildcards anywhere but a leading
    ``*.`` label, ports, schemes, paths and trailing dots.
    """
    p = pattern.strip().lower()
    if p != pattern.lower() or not p:
        raise ValueError(f"domain {pattern!r} must not be empty or padded with spaces")
    if _is_ip(p) or re.fullmatch(r"[0-9.]+", p):
        raise ValueError(f"domain {pattern!r} is an IP literal; only DNS names are allowed")
    if p in {"*", "*."}:
        raise ValueError("domain '*' would allow every host")
    base = p[2:] if p.startswith("*.") else p
    if "*" in base:
        raise ValueError(f"domain {pattern!r}: '*' is allowed only as a whole leading label '*.'")
    labels = base.split(".")
    if len(labels) < 2:
        raise ValueError(
            f"domain {pattern!r} is a bare top-level domain; name a registrable domain"
        )
    if not all(_LABEL.fullmatch(label) for label in labels) or len(base) > 253:
        raise ValueError(
            f"domain {pattern!r} is not a DNS name "
            "(letters, digits, '-', dots; no port/scheme/path)"
        )
    if labels[-1].isdigit():
        raise ValueError(f"domain {pattern!r} has a numeric top-level label")
    return p


def domain_matches(pattern: str, host: str) -> bool:
    """Exact match, or for ``*.example.com`` a strict subdomain (never ``example.com`` itself)."""
    h = host.lower().rstrip(".")
    if pattern.startswith("*."):
        return h.endswith(pattern[1:]) and len(h) > len(pattern) - 1
    return h == pattern


def url_host_allowed(value: str, patterns: tuple[str, ...]) -> str | None:
    """``None`` if ``value`` is an http(s) URL whose host matches ``patterns``; else why not."""
    if any(c in value for c in "\\\x00\r\n\t ") or not value.isprintable():
        return "URL contains a backslash, whitespace or control character"
    try:
        parts = urlsplit(value)
        port = parts.port  # raises on a malformed port
    except ValueError as e:
        return f"URL does not parse ({e})"
    del port
    if parts.scheme not in ("http", "https"):
        return f"URL scheme {parts.scheme!r} is not http or https"
    if "@" in parts.netloc:
        return "URL carries user information ('@'), a host-confusion trick"
    host = (parts.hostname or "").rstrip(".")
    if not host:
        return "URL has no host"
    if _is_ip(host):
        return f"URL host {host!r} is an IP literal"
    if not any(domain_matches(p, host) for p in patterns):
        return f"URL host {host!r} is not in the allowed domains"
    return None


def path_under(value: str, prefixes: tuple[str, ...]) -> str | None:
    """``None`` if ``value`` is an absolute path that stays under a prefix; else why not.

    ``..`` components, ``~``, NUL/control characters, backslashes and ``file:`` URLs are denied
    outright, whatever they would normalise to.
    """
    if not value.isprintable() or "\\" in value:
        return "path contains a control character or a backslash"
    if value.startswith(("~", "file:")):
        return "path starts with '~' or 'file:'"
    if not value.startswith("/"):
        return "path is not absolute"
    if ".." in value.split("/"):
        return "path contains a '..' component"
    norm = posixpath.normpath(value)
    if norm.startswith("//"):
        norm = "/" + norm.lstrip("/")
    for prefix in prefixes:
        root = prefix.rstrip("/") or "/"
        if root in ("/", norm) or norm.startswith(root + "/"):
            return None
    return f"path {norm!r} is not under any allowed prefix"


def validate_registry_pattern(pattern: str) -> str:
    """``host[:port]/path`` exact repository, or ``host[:port]/path/*`` (anything below it)."""
    p = pattern.strip()
    if p != pattern or not p:
        raise ValueError(f"registry pattern {pattern!r} must not be empty or padded")
    if "://" in p:
        raise ValueError(f"registry pattern {pattern!r} must not have a scheme")
    body = p[:-2] if p.endswith("/*") else p
    if "*" in body or "@" in body:
        raise ValueError(f"registry pattern {pattern!r}: '*' is allowed only as a final '/*'")
    host, _, rest = body.partition("/")
    bare = "." not in host and ":" not in host and host != "localhost"
    if not _HOST.fullmatch(host) or bare:
        raise ValueError(
            f"registry pattern {pattern!r} must start with a registry host "
            "(e.g. registry.example.com/team/*)"
        )
    if not rest:
        raise ValueError(
            f"registry pattern {pattern!r} names a whole registry; name a namespace "
            f"(e.g. {host}/team/*)"
        )
    if not all(_REPO_PART.fullmatch(part) for part in rest.split("/")):
        raise ValueError(f"registry pattern {pattern!r} has an invalid repository path")
    return p


def registry_matches(pattern: str, repository: str) -> bool:
    """``repository`` is ``host/path`` (as from :func:`image_repository`)."""
    if pattern.endswith("/*"):
        return repository.startswith(pattern[:-1]) and len(repository) > len(pattern) - 1
    return repository == pattern


def image_repository(ref: str) -> tuple[str, str | None, str | None]:
    """Split an image reference into (``host/path``, tag, digest), normalising Docker Hub names.

    Raises ValueError on anything that is not a well-formed reference.
    """
    if not ref or ref != ref.strip() or any(c.isspace() for c in ref):
        raise ValueError(f"image reference {ref!r} is empty or contains whitespace")
    name, _, digest = ref.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise ValueError(f"image digest in {ref!r} must be sha256:<64 lowercase hex>")
    tag: str | None = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, _, tag = name.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise ValueError(f"image tag {tag!r} in {ref!r} is not valid")
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        host, path = parts[0], parts[1:]
        if not _HOST.fullmatch(host):
            raise ValueError(f"image registry host {host!r} in {ref!r} is not valid")
    else:
        host, path = "docker.io", (["library", *parts] if len(parts) == 1 else parts)
    if not path or not all(_REPO_PART.fullmatch(p) for p in path):
        raise ValueError(f"image repository in {ref!r} is not valid (lowercase path components)")
    return f"{host.lower()}/{'/'.join(path)}", tag, digest or None
