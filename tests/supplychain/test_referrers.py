"""Sigstore bundles found via the referrers fallback tag on a real registry, verified offline."""

from __future__ import annotations

import json

import pytest

from stockade.supplychain import (
    IdentityMatcher,
    RegistryClient,
    SignatureVerificationError,
    fetch_referrer_bundles,
    parse_reference,
    verify_referrer_bundles,
)

from .images import desc
from .vectors import COSIGN, require_vectors

pytestmark = pytest.mark.registry

BUNDLE_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
EMPTY = "application/vnd.oci.empty.v1+json"
ATTESTED = "sha256:732112270d7e59418a8c080b134b24cabd67d250d0d0147a97ed95ba5c280aa4"
ROOT = COSIGN / "trust" / "production" / "trusted_root.json"
IDENT = (IdentityMatcher(subject="cody@soyland.com", issuer="https://github.com/login/oauth"),)


def attach(client: RegistryClient, repo: str, subject: str, bundle: bytes) -> None:
    """Attach ``bundle`` to ``subject`` the way a client does on a registry without referrers."""
    ref = parse_reference(f"{repo}@{subject}")
    client.push_blob(ref, b"{}")
    client.push_blob(ref, bundle)
    artifact = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": BUNDLE_TYPE,
            "config": desc(EMPTY, b"{}"),
            "layers": [desc(BUNDLE_TYPE, bundle)],
            "subject": {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": subject,
                "size": 1,
            },
        }
    ).encode()
    tagless = parse_reference(repo)
    digest = client.push_manifest(
        tagless, artifact, "application/vnd.oci.image.manifest.v1+json", "bundle-" + subject[7:19]
    )
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                desc(
                    "application/vnd.oci.image.manifest.v1+json", artifact, artifactType=BUNDLE_TYPE
                )
            ],
        }
    ).encode()
    assert digest
    client.push_manifest(
        tagless, index, "application/vnd.oci.image.index.v1+json", "sha256-" + subject[7:]
    )


def test_a_referrer_bundle_for_the_image_digest_verifies(registry: str) -> None:
    require_vectors()
    bundle = (COSIGN / "cosign-repo" / "oci-attestation.sigstore.json").read_bytes()
    with RegistryClient(plain_http=(registry,)) as client:
        attach(client, f"{registry}/acme/attested", ATTESTED, bundle)
        image = parse_reference(f"{registry}/acme/attested@{ATTESTED}")
        found = fetch_referrer_bundles(client, image)
        assert found == (bundle,)
        ev = verify_referrer_bundles(
            found, digest=ATTESTED, identities=IDENT, trusted_root=ROOT.read_bytes()
        )
        assert ev.subject == "cody@soyland.com"


@pytest.mark.guarantee("image-referrer-bundle")
def test_a_bundle_attached_to_another_digest_does_not_verify_this_one(registry: str) -> None:
    require_vectors()
    bundle = (COSIGN / "cosign-repo" / "oci-attestation.sigstore.json").read_bytes()
    other = "sha256:" + "5" * 64
    with RegistryClient(plain_http=(registry,)) as client:
        attach(client, f"{registry}/acme/moved", other, bundle)
        found = fetch_referrer_bundles(client, parse_reference(f"{registry}/acme/moved@{other}"))
        with pytest.raises(SignatureVerificationError, match=r"step 5 \(statement\)"):
            verify_referrer_bundles(
                found, digest=other, identities=IDENT, trusted_root=ROOT.read_bytes()
            )


@pytest.mark.guarantee("image-referrer-bundle")
def test_an_image_without_referrers_is_denied(registry: str) -> None:
    with RegistryClient(plain_http=(registry,)) as client:
        none = fetch_referrer_bundles(
            client, parse_reference(f"{registry}/acme/bare@sha256:" + "6" * 64)
        )
    assert none == ()
    with pytest.raises(SignatureVerificationError, match="got 0 referrers"):
        verify_referrer_bundles(
            none, digest="sha256:" + "6" * 64, identities=IDENT, trusted_root=b""
        )
