"""Images built in the tests: a gzip tar layer, a config and an OCI manifest, pushed for real."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile

from stockade.supplychain import ImageReference, RegistryClient, parse_reference

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
CONFIG = "application/vnd.oci.image.config.v1+json"


def layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def desc(media_type: str, data: bytes, **extra: object) -> dict[str, object]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
        **extra,
    }


def push_image(
    client: RegistryClient,
    name: str,
    tag: str,
    files: dict[str, bytes],
    arch: str = "amd64",
) -> tuple[ImageReference, bytes]:
    """Push a one-layer image under ``name:tag``; returns the pinned reference and manifest."""
    ref = parse_reference(f"{name}:{tag}")
    blob = layer(files)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(blob)).hexdigest()
    config = json.dumps(
        {
            "architecture": arch,
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    client.push_blob(ref, blob)
    client.push_blob(ref, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc(CONFIG, config),
            "layers": [desc(LAYER, blob)],
        }
    ).encode()
    digest = client.push_manifest(ref, manifest, OCI_MANIFEST, tag)
    return ref.with_digest(digest), manifest


def push_index(
    client: RegistryClient, name: str, tag: str, platforms: dict[str, bytes]
) -> tuple[ImageReference, dict[str, str]]:
    """Push one image per architecture and an index over them; returns arch -> manifest digest."""
    entries = []
    digests: dict[str, str] = {}
    for arch, marker in platforms.items():
        ref, manifest = push_image(client, name, f"{tag}-{arch}", {"arch": marker}, arch)
        assert ref.digest is not None
        digests[arch] = ref.digest
        entries.append(desc(OCI_MANIFEST, manifest, platform={"os": "linux", "architecture": arch}))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    ref = parse_reference(f"{name}:{tag}")
    digest = client.push_manifest(ref, index, OCI_INDEX, tag)
    return ref.with_digest(digest), digests
