"""Approved base images: an image must declare an approved base and start with its exact layers.

The declaration is the OCI annotations ``org.opencontainers.image.base.name`` and
``org.opencontainers.image.base.digest`` on the image manifest. The check is pure: the base's layer
digests are given (the gate fetches the base manifest by its pinned digest).
"""

from __future__ import annotations

from pydantic import field_validator

from stockade.errors import SupplyChainError
from stockade.models import Frozen

from ._errors import ImageReferenceError
from ._manifest import ImageManifest
from ._reference import parse_reference

__all__ = ["BASE_DIGEST", "BASE_NAME", "ApprovedBase", "BaseImageError", "check_base"]

BASE_NAME = "org.opencontainers.image.base.name"
BASE_DIGEST = "org.opencontainers.image.base.digest"


class BaseImageError(SupplyChainError):
    """The image's base is undeclared, not approved, or its layers do not start with the base's."""


class ApprovedBase(Frozen):
    """An approved base: a repository name and the digest of its (platform) manifest."""

    name: str
    digest: str

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        ref = parse_reference(v)
        if ref.digest is not None:
            raise ValueError("give the digest separately")
        return ref.name

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        parse_reference(f"x@{v}").pinned()
        return v


def _fail(got: str, expected: str) -> BaseImageError:
    return BaseImageError(
        f"base image: got {got}, expected {expected}",
        "build the image FROM an approved base (by digest) and keep its base annotations",
    )


def declared_base(manifest: ImageManifest) -> ApprovedBase:
    name = manifest.annotations.get(BASE_NAME)
    digest = manifest.annotations.get(BASE_DIGEST)
    if not name or not digest:
        raise _fail("no base annotations", f"{BASE_NAME} and {BASE_DIGEST}")
    try:
        return ApprovedBase(name=name, digest=digest)
    except (ValueError, ImageReferenceError):
        raise _fail(
            f"malformed base annotations {name[:80]!r}@{digest[:80]!r}", "name@sha256"
        ) from None


def check_base(
    manifest: ImageManifest,
    approved: tuple[ApprovedBase, ...],
    base_layers: tuple[str, ...],
) -> ApprovedBase:
    """The approved base ``manifest`` is built on; ``base_layers`` are that base's layer digests."""
    if not approved:
        raise _fail("an empty approved-base list", "at least one approved base")
    base = declared_base(manifest)
    if base not in approved:
        names = ", ".join(f"{a.name}@{a.digest[:19]}" for a in approved)
        raise _fail(f"declared base {base.name}@{base.digest}", f"one of {names}")
    layers = tuple(d.digest for d in manifest.layers)
    if not base_layers or layers[: len(base_layers)] != base_layers:
        raise _fail(
            f"first layers {[d[:19] for d in layers[: len(base_layers)]]}",
            f"exactly the base's {len(base_layers)} layers {[d[:19] for d in base_layers]}",
        )
    return base
