"""Container image references, parsed with Docker's defaults, and registry allowlist patterns.

A reference is ``[HOST[:PORT]/]PATH[:TAG][@DIGEST]``. The first path component is a registry host
only when it contains ``.`` or ``:`` or is ``localhost``; otherwise the registry is ``docker.io``,
and a single-component path gets the ``library/`` namespace (``nginx`` is
``docker.io/library/nginx``). Every malformed reference raises ``ValueError`` saying what was
expected: the caller turns it into a denial (fail closed).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "ImageRef",
    "RegistryPattern",
    "image_allowed",
    "parse_image_ref",
    "parse_registry_pattern",
]

DOCKER_HUB = "docker.io"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(
    r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
    r"|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?"
)
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}")
PINNED_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_MAX_NAME = 255


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference with Docker defaults applied."""

    registry: str
    repository: str
    tag: str | None
    digest: str | None

    @property
    def pinned(self) -> bool:
        """True when the reference names a ``sha256`` digest of 64 lowercase hex characters."""
        return self.digest is not None and PINNED_DIGEST.fullmatch(self.digest) is not None


def _split_host(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.fullmatch(first):
            raise ValueError(f"registry host {first!r} is not a valid host[:port]")
        host = first.lower()
        return (DOCKER_HUB if host in _HUB_ALIASES else host), rest
    return DOCKER_HUB, name


def _check_path(registry: str, path: str) -> str:
    if not path:
        raise ValueError("the repository path is empty")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise ValueError(
                f"repository component {component!r} is not lowercase letters, digits and . _ -"
            )
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    return path


def parse_image_ref(ref: str) -> ImageRef:
    """Parse ``ref``; raise ``ValueError`` (got X, expected Y) when it is not a valid reference."""
    if not ref or ref != ref.strip() or len(ref) > 1024:
        raise ValueError(
            f"got {ref!r}, expected an image reference such as HOST/NAME@sha256:<64 hex>"
        )
    name, at, digest = ref.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise ValueError(f"digest {digest!r} is not ALGORITHM:HEX")
    tag: str | None = None
    slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"tag {tag!r} is not a valid tag")
    if len(name) > _MAX_NAME:
        raise ValueError(f"the image name is longer than {_MAX_NAME} characters")
    registry, path = _split_host(name)
    repository = _check_path(registry, path)
    return ImageRef(
        registry=registry, repository=repository, tag=tag, digest=digest if at else None
    )


@dataclass(frozen=True)
class RegistryPattern:
    """``registry/prefix/*`` matches every repository below the prefix; otherwise exact."""

    registry: str
    repository: str  # prefix (may be "" for a whole registry) when ``wildcard``
    wildcard: bool

    def matches(self, image: ImageRef) -> bool:
        if image.registry != self.registry:
            return False
        if not self.wildcard:
            return image.repository == self.repository
        return not self.repository or image.repository.startswith(self.repository + "/")


def parse_registry_pattern(pattern: str) -> RegistryPattern:
    """Parse an allowlist pattern: ``HOST[:PORT]/NAMESPACE[/...]/*`` or an exact repository.

    The host is explicit (no Docker Hub guess in an allowlist) and at least one namespace is named
    (a whole public registry is never one pattern). Raises ``ValueError`` (got X, expected Y).
    """
    expected = "expected HOST/NAMESPACE/* (e.g. ghcr.io/acme/*) or an exact HOST/REPOSITORY"
    if not pattern or pattern != pattern.strip() or "://" in pattern:
        raise ValueError(f"got {pattern!r}, {expected}")
    wildcard = pattern.endswith("/*")
    body = pattern[:-2] if wildcard else pattern
    if "*" in body or "@" in body:
        raise ValueError(f"got {pattern!r}, {expected} ('*' only as a final '/*', no digest)")
    host, _, path = body.partition("/")
    if not ("." in host or ":" in host or host == "localhost") or not _HOST.fullmatch(host):
        raise ValueError(f"got {pattern!r}, {expected} (it must start with a registry host)")
    if not path:
        raise ValueError(f"got {pattern!r}, {expected} (name a namespace, not a whole registry)")
    if ":" in path:
        raise ValueError(f"got {pattern!r}, {expected} (no tag in a pattern)")
    for component in path.split("/"):
        if not _COMPONENT.fullmatch(component):
            raise ValueError(f"got {pattern!r}: {component!r} is not a repository component")
    registry = host.lower()
    registry = DOCKER_HUB if registry in _HUB_ALIASES else registry
    return RegistryPattern(registry, path, wildcard)


def image_allowed(image: ImageRef, patterns: tuple[RegistryPattern, ...]) -> bool:
    """True when some pattern matches; an empty allowlist allows nothing."""
    return any(p.matches(image) for p in patterns)
