"""OCI / Docker manifests and indexes: strict parsing, known media types only, platform choice."""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import Field

from stockade.models import Frozen

from ._errors import RegistryError

__all__ = [
    "DOCKER_LIST",
    "DOCKER_MANIFEST",
    "MANIFEST_MEDIA_TYPES",
    "OCI_INDEX",
    "OCI_MANIFEST",
    "Descriptor",
    "ImageManifest",
    "Platform",
    "parse_manifest",
    "select_platform",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_MEDIA_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MAX_BLOB = 4 * 1024 * 1024 * 1024
MAX_ENTRIES = 1000
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class Platform(Frozen):
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None


class Descriptor(Frozen):
    media_type: str
    digest: str
    size: int = Field(ge=0, le=MAX_BLOB)
    annotations: dict[str, str] = Field(default_factory=dict)
    platform: Platform | None = None
    artifact_type: str | None = None


class ImageManifest(Frozen):
    media_type: str
    config: Descriptor | None = None  # None for an index
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()  # for an index
    annotations: dict[str, str] = Field(default_factory=dict)

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def _bad(what: str) -> RegistryError:
    return RegistryError(f"malformed manifest: {what}", "refuse this image; it is not well formed")


def _strings(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(f"{what} must map strings to strings")
    return dict(value)


def _descriptor(value: Any, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise _bad(f"{what} is not an object")
    media, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if not isinstance(media, str) or not media:
        raise _bad(f"{what} has no mediaType")
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise _bad(f"{what} digest got {str(digest)[:80]!r}, expected sha256:<64 hex>")
    if type(size) is not int or not 0 <= size <= MAX_BLOB:
        raise _bad(f"{what} size got {size!r}, expected 0..{MAX_BLOB}")
    platform = None
    raw_platform = value.get("platform")
    if raw_platform is not None:
        if not isinstance(raw_platform, dict):
            raise _bad(f"{what} platform is not an object")
        os_, arch, variant = (
            raw_platform.get("os"),
            raw_platform.get("architecture"),
            raw_platform.get("variant"),
        )
        if not isinstance(os_, str) or not isinstance(arch, str):
            raise _bad(f"{what} platform needs os and architecture")
        platform = Platform(
            os=os_, architecture=arch, variant=variant if isinstance(variant, str) else None
        )
    return Descriptor(
        media_type=media,
        digest=digest,
        size=size,
        annotations=_strings(value.get("annotations"), f"{what} annotations"),
        platform=platform,
        artifact_type=artifact if isinstance(artifact := value.get("artifactType"), str) else None,
    )


def parse_manifest(raw: bytes, header_media_type: str | None = None) -> ImageManifest:
    """Parse manifest bytes; unknown media types and schema 1 manifests are refused."""
    try:
        doc = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _bad("not JSON") from None
    if not isinstance(doc, dict):
        raise _bad("not a JSON object")
    if doc.get("schemaVersion") != 2:
        raise _bad(f"schemaVersion got {doc.get('schemaVersion')!r}, expected 2")
    media = doc.get("mediaType", header_media_type)
    if header_media_type and media and media != header_media_type:
        base = header_media_type.split(";")[0].strip()
        if base != media:
            raise _bad(f"mediaType {media!r} differs from the served type {base!r}")
    if media is None:
        media = OCI_INDEX if "manifests" in doc else OCI_MANIFEST
    if media not in MANIFEST_MEDIA_TYPES:
        raise RegistryError(
            f"unknown manifest media type: got {str(media)[:80]!r}, "
            f"expected one of {', '.join(MANIFEST_MEDIA_TYPES)}",
            "refuse this image; stockade only runs OCI / Docker v2 images",
        )
    annotations = _strings(doc.get("annotations"), "annotations")
    if media in INDEX_TYPES:
        entries = doc.get("manifests")
        if not isinstance(entries, list) or len(entries) > MAX_ENTRIES:
            raise _bad("index manifests must be a list")
        return ImageManifest(
            media_type=media,
            manifests=tuple(_descriptor(m, f"manifests[{i}]") for i, m in enumerate(entries)),
            annotations=annotations,
        )
    layers = doc.get("layers")
    if not isinstance(layers, list) or len(layers) > MAX_ENTRIES:
        raise _bad("layers must be a list")
    return ImageManifest(
        media_type=media,
        config=_descriptor(doc.get("config"), "config"),
        layers=tuple(_descriptor(x, f"layers[{i}]") for i, x in enumerate(layers)),
        annotations=annotations,
    )


def select_platform(index: ImageManifest, want: Platform) -> Descriptor:
    """The index entry for ``want``; none or an ambiguous choice refuses."""
    matches = [
        d
        for d in index.manifests
        if d.platform is not None
        and d.platform.os == want.os
        and d.platform.architecture == want.architecture
        and (want.variant is None or d.platform.variant == want.variant)
        and d.media_type in MANIFEST_MEDIA_TYPES
        and d.media_type not in INDEX_TYPES
    ]
    if len(matches) != 1:
        have = sorted(
            f"{d.platform.os}/{d.platform.architecture}" for d in index.manifests if d.platform
        )
        raise RegistryError(
            f"platform {want.os}/{want.architecture}: got {len(matches)} matching entries "
            f"among {have}, expected exactly one",
            "choose the platform explicitly or use a single-platform image",
        )
    return matches[0]
