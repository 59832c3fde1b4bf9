"""Attach attestations, SBOMs and Sigstore bundles to an image in a real registry, as clients do.

Cosign's ``sha256-<hex>.att`` tag with DSSE envelope layers; OCI 1.1 referrers through the
fallback tag ``sha256-<hex>`` (an index, appended to on each attach: the loopback registry does
not serve the referrers API).
"""

from __future__ import annotations

import base64
import json

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from stockade.supplychain import (
    DSSE_MEDIA_TYPE,
    ImageReference,
    RegistryClient,
    RegistryError,
    dsse_pae,
)

from .images import desc

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
BUILDER = "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/g.yml@v2"
SOURCE = "https://github.com/acme/tool"


def statement(digest: str, *, builder: str = BUILDER, source: str = SOURCE) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": "https://slsa.dev/provenance/v1",
            "subject": [{"name": "app", "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicate": {
                "buildDefinition": {
                    "externalParameters": {"workflow": {"repository": source, "ref": "main"}}
                },
                "runDetails": {"builder": {"id": builder}},
            },
        }
    ).encode()


def envelope(payload: bytes, key: ec.EllipticCurvePrivateKey | None) -> bytes:
    """A DSSE envelope over ``payload``; ``key=None`` gives one with no signature."""
    sigs = []
    if key is not None:
        sig = key.sign(dsse_pae(IN_TOTO, payload), ec.ECDSA(hashes.SHA256()))
        sigs.append({"keyid": "", "sig": base64.b64encode(sig).decode()})
    return json.dumps(
        {"payloadType": IN_TOTO, "payload": base64.b64encode(payload).decode(), "signatures": sigs}
    ).encode()


def _tagged(image: ImageReference, suffix: str) -> ImageReference:
    assert image.digest is not None
    return ImageReference(
        registry=image.registry,
        repository=image.repository,
        tag="sha256-" + image.digest[7:] + suffix,
    )


def push_artifact_tag(
    client: RegistryClient, image: ImageReference, suffix: str, layers: list[tuple[str, bytes]]
) -> None:
    """A manifest of ``layers`` (media type, blob) under ``sha256-<hex><suffix>``."""
    ref = _tagged(image, suffix)
    client.push_blob(ref, b"{}")
    for _, blob in layers:
        client.push_blob(ref, blob)
    raw = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": desc("application/vnd.oci.image.config.v1+json", b"{}"),
            "layers": [desc(mt, blob) for mt, blob in layers],
        }
    ).encode()
    assert ref.tag is not None
    client.push_manifest(ref, raw, OCI_MANIFEST, ref.tag)


def attach_attestation(client: RegistryClient, image: ImageReference, env: bytes) -> None:
    push_artifact_tag(client, image, ".att", [(DSSE_MEDIA_TYPE, env)])


def attach_referrer(
    client: RegistryClient,
    image: ImageReference,
    artifact_type: str,
    blob: bytes,
    *,
    layer_type: str | None = None,
) -> None:
    """``blob`` as a referrer artifact of ``image``, listed in the fallback-tag index."""
    assert image.digest is not None
    client.push_blob(image, b"{}")
    client.push_blob(image, blob)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": artifact_type,
            "config": desc(EMPTY, b"{}"),
            "layers": [desc(layer_type or artifact_type, blob)],
            "subject": {"mediaType": OCI_MANIFEST, "digest": image.digest, "size": 1},
        }
    ).encode()
    tagless = ImageReference(registry=image.registry, repository=image.repository)
    client.push_manifest(tagless, artifact, OCI_MANIFEST, "ref-" + image.digest[7:19] + "-x")
    fallback = _tagged(image, "")
    entries: list[object] = []
    try:
        raw, _, _ = client.get_manifest(fallback)
        entries = list(json.loads(raw)["manifests"])
    except RegistryError:
        entries = []
    entries.append(desc(OCI_MANIFEST, artifact, artifactType=artifact_type))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    assert fallback.tag is not None
    client.push_manifest(tagless, index, OCI_INDEX, fallback.tag)
