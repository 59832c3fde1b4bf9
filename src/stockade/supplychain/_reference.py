"""Image references, parsed exactly by the distribution (Docker/OCI) reference grammar.

Grammar (``distribution/reference``)::

    reference        := name [ ":" tag ] [ "@" digest ]
    name             := [domain "/"] path
    domain           := host [ ":" port ]
    host             := domain-name | "[" ipv6 "]"
    domain-name      := component ( "." component )*
    component        := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
    port             := [0-9]+
    path             := path-component ( "/" path-component )*
    path-component   := [a-z0-9]+ ( separator [a-z0-9]+ )*
    separator        := [._] | "__" | "-"+
    tag              := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
    digest           := algorithm ":" hex     (sha256: 64, sha384: 96, sha512: 128 lower-case hex)

Normalisation (as the Docker CLI does): a first path element without ``.`` or ``:``, not
``localhost`` and all lower case is not a registry, so the registry is ``docker.io``;
``index.docker.io`` is ``docker.io``; a one-element repository on ``docker.io`` gets ``library/``.
The repository (everything after the registry) must be lower case; the whole name (registry and
repository) is at most 255 characters. A bare 64-hex string is refused (it looks like an image id).
"""

from __future__ import annotations

import re

from pydantic import Field, field_validator, model_validator

from stockade.models import Frozen, PinnedImage

from ._errors import ImageReferenceError

__all__ = [
    "DEFAULT_REGISTRY",
    "ImageReference",
    "parse_reference",
]

DEFAULT_REGISTRY = "docker.io"
_LEGACY_DEFAULT = "index.docker.io"
_OFFICIAL_PREFIX = "library/"
NAME_TOTAL_MAX = 255
_MAX_INPUT = 4096

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[[a-fA-F0-9:]+\]"
_HOST = rf"(?:{_DOMAIN_NAME}|{_IPV6})"
_DOMAIN = rf"{_HOST}(?::[0-9]+)?"
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_PATH = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_DOMAIN_RE = re.compile(_DOMAIN, re.ASCII)
_PATH_RE = re.compile(_PATH, re.ASCII)
_TAG_RE = re.compile(_TAG, re.ASCII)
_REFERENCE_RE = re.compile(
    rf"(?P<name>(?:{_DOMAIN}/)?{_PATH})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?", re.ASCII
)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)
_DIGEST_HEX_LEN = {"sha256": 64, "sha384": 96, "sha512": 128}


def _check_digest(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    want = _DIGEST_HEX_LEN.get(algorithm)
    if want is None:
        raise ImageReferenceError(
            f"unsupported digest algorithm: got {algorithm!r}, expected sha256, sha384 or sha512",
            "pin the image by its sha256 manifest digest",
        )
    if len(hexpart) != want or not re.fullmatch(r"[0-9a-f]+", hexpart, re.ASCII):
        raise ImageReferenceError(
            f"invalid {algorithm} digest: got {len(hexpart)} characters {hexpart[:16]!r}..., "
            f"expected {want} lower-case hex characters",
            "copy the digest exactly as the registry reports it",
        )
    return digest


class ImageReference(Frozen):
    """A parsed, normalised image reference. ``registry`` is never empty (``docker.io`` default)."""

    registry: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    tag: str | None = None
    digest: str | None = None

    @field_validator("registry")
    @classmethod
    def _registry(cls, v: str) -> str:
        if not _DOMAIN_RE.fullmatch(v):
            raise ValueError(f"registry {v!r} is not host[:port]")
        return DEFAULT_REGISTRY if v == _LEGACY_DEFAULT else v

    @field_validator("repository")
    @classmethod
    def _repository(cls, v: str) -> str:
        if not _PATH_RE.fullmatch(v):
            raise ValueError(f"repository {v!r} is not a lower-case path of name components")
        return v

    @field_validator("tag")
    @classmethod
    def _tag(cls, v: str | None) -> str | None:
        if v is not None and not _TAG_RE.fullmatch(v):
            raise ValueError(f"tag {v!r} does not match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")
        return v

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                _check_digest(v)
            except ImageReferenceError as e:
                raise ValueError(e.what) from None
        return v

    @model_validator(mode="after")
    def _rules(self) -> ImageReference:
        if self.registry == DEFAULT_REGISTRY and "/" not in self.repository:
            raise ValueError(f"docker.io repository {self.repository!r} needs the library/ prefix")
        if len(self.name) > NAME_TOTAL_MAX:
            raise ValueError(f"name is {len(self.name)} characters, at most {NAME_TOTAL_MAX}")
        return self

    @property
    def name(self) -> str:
        """``registry/repository``: the fully qualified name without tag or digest."""
        return f"{self.registry}/{self.repository}"

    def __str__(self) -> str:
        out = self.name
        if self.tag is not None:
            out += f":{self.tag}"
        if self.digest is not None:
            out += f"@{self.digest}"
        return out

    def pinned(self) -> PinnedImage:
        """The :class:`PinnedImage` for this reference; refused without a ``sha256:`` digest."""
        if self.digest is None:
            raise ImageReferenceError(
                f"image {self} is not pinned: got a tag-only reference, expected @sha256:<digest>",
                "resolve the tag to its digest (stockade image resolve) and use name@sha256:...",
            )
        if not self.digest.startswith("sha256:"):
            raise ImageReferenceError(
                f"image {self} is pinned with {self.digest.partition(':')[0]}, expected sha256",
                "pin the image by its sha256 manifest digest",
            )
        return PinnedImage(
            registry=self.registry, repository=self.repository, digest=self.digest, tag=self.tag
        )

    def with_digest(self, digest: str) -> ImageReference:
        """The same name and tag, pinned to ``digest``."""
        return ImageReference(
            registry=self.registry, repository=self.repository, tag=self.tag, digest=digest
        )


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    if not slash or (
        not any(c in first for c in ".:") and first != "localhost" and first.lower() == first
    ):
        domain, remainder = DEFAULT_REGISTRY, name
    else:
        domain, remainder = first, rest
    if domain == _LEGACY_DEFAULT:
        domain = DEFAULT_REGISTRY
    if domain == DEFAULT_REGISTRY and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str) -> ImageReference:
    """Parse and normalise ``text``; every malformed input raises :class:`ImageReferenceError`."""
    fix = "write the image as [registry[:port]/]repository[:tag][@sha256:<64 hex>]"
    if not isinstance(text, str) or not text:
        raise ImageReferenceError("empty image reference, expected a repository name", fix)
    if len(text) > _MAX_INPUT:
        raise ImageReferenceError(
            f"image reference is {len(text)} characters, expected at most {_MAX_INPUT}", fix
        )
    if _IDENTIFIER_RE.fullmatch(text):
        raise ImageReferenceError(
            "image reference is a bare 64-hex string, expected a repository name "
            "(a bare hex string is an image id, not a name)",
            fix,
        )
    match = _REFERENCE_RE.fullmatch(text)
    if match is None:
        lowered = text.lower()
        hint = " (the repository must be lower case)" if _REFERENCE_RE.fullmatch(lowered) else ""
        raise ImageReferenceError(
            f"invalid image reference {text!r}: does not match the reference grammar{hint}", fix
        )
    domain, remainder = _split_domain(match["name"])
    if remainder.lower() != remainder or not _PATH_RE.fullmatch(remainder):
        raise ImageReferenceError(
            f"invalid repository {remainder!r} in {text!r}: expected lower-case name components",
            fix,
        )
    if len(f"{domain}/{remainder}") > NAME_TOTAL_MAX:
        raise ImageReferenceError(
            f"repository name is {len(domain) + 1 + len(remainder)} characters, "
            f"expected at most {NAME_TOTAL_MAX}",
            fix,
        )
    digest = match["digest"]
    if digest is not None:
        _check_digest(digest)
    return ImageReference(registry=domain, repository=remainder, tag=match["tag"], digest=digest)
