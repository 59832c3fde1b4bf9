"""Sigstore bundles attached to an image as OCI 1.1 referrers (or via the referrers fallback tag).

Discovery: ``GET /v2/<repo>/referrers/<digest>``; when the registry does not implement it (404),
the fallback tag ``sha256-<hex>`` holding an OCI index of referrers. Entries whose artifactType is a
Sigstore bundle are fetched (manifest by digest, then its single bundle layer, both checked and
capped). Verification: valid if any bundle is a DSSE in-toto statement naming the image digest,
signed by an identity the policy accepts, against the given trusted root.
"""

from __future__ import annotations

from ._bundle import BundleEvidence, verify_attestation_bundle
from ._errors import RegistryError, SignatureVerificationError
from ._manifest import OCI_INDEX, parse_manifest
from ._policy import IdentityMatcher
from ._reference import ImageReference
from ._registry import RegistryClient

__all__ = [
    "BUNDLE_ARTIFACT_TYPES",
    "fetch_referrer_bundles",
    "referrers_index",
    "verify_referrer_bundles",
]

BUNDLE_ARTIFACT_TYPES = (
    "application/vnd.dev.sigstore.bundle.v0.3+json",
    "application/vnd.dev.sigstore.bundle+json;version=0.3",
)
MAX_REFERRERS = 64
MAX_BUNDLE = 1024 * 1024


def referrers_index(client: RegistryClient, image: ImageReference) -> bytes | None:
    """The referrers index of ``image`` (pinned): the API, else the fallback tag; none: None."""
    assert image.digest is not None  # noqa: S101  (callers pass pinned references)
    raw = client.get_referrers(image)
    if raw is not None:
        return raw
    algorithm, _, hexpart = image.digest.partition(":")
    fallback = ImageReference(
        registry=image.registry, repository=image.repository, tag=f"{algorithm}-{hexpart}"
    )
    try:
        raw, _, _ = client.get_manifest(fallback)
    except RegistryError as e:
        if "not found" in e.what:
            return None
        raise
    return raw


def fetch_referrer_bundles(client: RegistryClient, image: ImageReference) -> tuple[bytes, ...]:
    """The Sigstore bundles attached to ``image`` (pinned); none gives ``()``."""
    if image.digest is None:
        raise RegistryError(f"{image}: no digest to look referrers up by", "resolve it first")
    raw = referrers_index(client, image)
    if raw is None:
        return ()
    index = parse_manifest(raw, OCI_INDEX)
    if not index.is_index:
        raise RegistryError(f"referrers of {image.name}: got a manifest, expected an index", "")
    out: list[bytes] = []
    for entry in index.manifests[:MAX_REFERRERS]:
        if entry.artifact_type not in BUNDLE_ARTIFACT_TYPES:
            continue
        _, manifest, _ = client.get_manifest(image.with_digest(entry.digest))
        if manifest.is_index or len(manifest.layers) != 1:
            raise RegistryError(f"bundle artifact {entry.digest}: expected one bundle layer", "")
        layer = manifest.layers[0]
        if layer.size > MAX_BUNDLE:
            raise RegistryError(
                f"bundle {layer.digest}: {layer.size} bytes, at most {MAX_BUNDLE}", ""
            )
        out.append(client.get_blob(image, layer.digest, layer.size))
    return tuple(out)


def verify_referrer_bundles(
    bundles: tuple[bytes, ...],
    *,
    digest: str,
    identities: tuple[IdentityMatcher, ...],
    trusted_root: bytes,
) -> BundleEvidence:
    """Evidence of the first bundle that verifies for ``digest``; else deny with every reason."""
    if not bundles:
        raise SignatureVerificationError(
            f"no Sigstore bundle refers to {digest}: got 0 referrers, expected 1+",
            "attach a signed bundle (cosign v3 / sigstore) to the image",
        )
    failures: list[str] = []
    for i, bundle in enumerate(bundles):
        try:
            evidence, _ = verify_attestation_bundle(
                bundle, digest, identities=identities, trusted_root=trusted_root
            )
        except SignatureVerificationError as e:
            failures.append(f"bundle {i + 1}: {e.what}")
            continue
        return evidence
    raise SignatureVerificationError(
        f"no referrer bundle for {digest} satisfies the policy: " + "; ".join(failures),
        "check the bundles' signer identity and the trusted root",
        failures=tuple(failures),
    )
