"""Cosign signatures stored in a registry under the ``sha256-<hex>.sig`` tag (read and write)."""

from __future__ import annotations

import hashlib
import json

from ._cosign import SignatureLayer
from ._errors import RegistryError
from ._manifest import OCI_MANIFEST
from ._reference import ImageReference
from ._registry import RegistryClient
from ._simplesigning import SIMPLESIGNING_MEDIA_TYPE

__all__ = ["fetch_signatures", "push_signature", "signature_tag"]

MAX_SIGNATURES = 64
MAX_SIGNATURE_PAYLOAD = 64 * 1024
_EMPTY_CONFIG = b"{}"
_CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"


def signature_tag(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}-{hexpart}.sig"


def _sig_ref(image: ImageReference) -> ImageReference:
    if image.digest is None:
        raise RegistryError(f"{image}: no digest to look signatures up by", "resolve it first")
    return ImageReference(
        registry=image.registry, repository=image.repository, tag=signature_tag(image.digest)
    )


def fetch_signatures(client: RegistryClient, image: ImageReference) -> tuple[SignatureLayer, ...]:
    """Every signature layer attached to ``image``'s digest; none attached gives ``()``."""
    sig_ref = _sig_ref(image)
    try:
        _, manifest, _ = client.get_manifest(sig_ref)
    except RegistryError as e:
        if "not found" in e.what:
            return ()
        raise
    if manifest.is_index:
        raise RegistryError(f"{sig_ref}: got an index, expected a signature manifest", "")
    if len(manifest.layers) > MAX_SIGNATURES:
        raise RegistryError(f"{sig_ref}: more than {MAX_SIGNATURES} signatures", "")
    layers: list[SignatureLayer] = []
    for d in manifest.layers:
        if d.size > MAX_SIGNATURE_PAYLOAD:
            raise RegistryError(f"{sig_ref}: signature payload of {d.size} bytes", "")
        payload = client.get_blob(sig_ref, d.digest, d.size)
        layers.append(
            SignatureLayer(media_type=d.media_type, payload=payload, annotations=d.annotations)
        )
    return tuple(layers)


def _descriptor(
    media_type: str, data: bytes, annotations: dict[str, str] | None = None
) -> dict[str, object]:
    out: dict[str, object] = {
        "mediaType": media_type,
        "size": len(data),
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
    }
    if annotations:
        out["annotations"] = annotations
    return out


def push_signature(client: RegistryClient, image: ImageReference, layer: SignatureLayer) -> str:
    """Attach ``layer`` to ``image`` (appending to existing signatures); returns the tag."""
    sig_ref = _sig_ref(image)
    existing = fetch_signatures(client, image)
    layers = [*existing, layer]
    for each in layers:
        client.push_blob(sig_ref, each.payload)
    client.push_blob(sig_ref, _EMPTY_CONFIG)
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": _descriptor(_CONFIG_TYPE, _EMPTY_CONFIG),
        "layers": [
            _descriptor(x.media_type or SIMPLESIGNING_MEDIA_TYPE, x.payload, x.annotations)
            for x in layers
        ],
    }
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    assert sig_ref.tag is not None  # noqa: S101
    client.push_manifest(sig_ref, raw, OCI_MANIFEST, sig_ref.tag)
    return f"{sig_ref.name}:{sig_ref.tag}"
