"""The supply-chain gate: allowlist -> resolve -> signatures -> evidence (fail closed), and pull.

No path returns a :class:`VerifiedImage` unless every step passed in this call. A run must use
``verified.pinned`` (the digest), never the tag: a tag moved after verification changes nothing.
"""

from __future__ import annotations

from stockade.models import Clock, Frozen, PinnedImage

from ._allowlist import RegistryAllowlist
from ._attest import (
    ProvenanceEvidence,
    SbomEvidence,
    fetch_attestations,
    find_sbom,
    verify_provenance,
)
from ._bases import ApprovedBase, check_base, declared_base
from ._bundle import verify_attestation_bundle
from ._cosign import SignatureEvidence, verify_image_signatures
from ._errors import ImageReferenceError, RegistryError, SignatureVerificationError
from ._keybundle import verify_bundle_with_key
from ._layout import OciLayoutStore
from ._manifest import INDEX_TYPES, Platform, parse_manifest, select_platform
from ._policy import VerificationPolicy
from ._reference import ImageReference, parse_reference
from ._referrers import fetch_referrer_bundles
from ._registry import RegistryClient
from ._sigstore_oci import fetch_signatures

__all__ = ["VerifiedImage", "pull_image", "require_pinned", "verify_remote_image"]


class VerifiedImage(Frozen):
    pinned: PinnedImage
    reference: str
    allowed_by: str
    base: ApprovedBase | None = None
    media_type: str
    size: int
    evidence: SignatureEvidence
    provenance: ProvenanceEvidence | None = None
    sbom: SbomEvidence | None = None


def require_pinned(text: str) -> PinnedImage:
    """At run time only a digest-pinned reference is accepted (a tag could move)."""
    ref = parse_reference(text)
    if ref.digest is None:
        raise ImageReferenceError(
            f"refusing to run {ref}: got a tag-only reference at run time, expected "
            "name@sha256:<digest> from a verification in this run",
            "verify the image (stockade image verify) and run the digest it prints",
        )
    return ref.pinned()


def verify_remote_image(
    client: RegistryClient,
    ref: ImageReference,
    *,
    allowlist: RegistryAllowlist,
    policy: VerificationPolicy,
    clock: Clock,
    approved_bases: tuple[ApprovedBase, ...] = (),
    require_sbom: bool = False,
) -> VerifiedImage:
    """Allowlist, fetch (digest checked), signatures (``.sig`` tag, else referrer bundles when a
    rule has a trusted root), provenance when a rule requires it, SBOM recorded; approved base
    when the policy lists any."""
    allowed_by = allowlist.check(ref)
    raw, manifest, digest = client.get_manifest(ref)
    pinned_ref = ref.with_digest(digest)
    signatures = fetch_signatures(client, pinned_ref)
    try:
        evidence = verify_image_signatures(
            signatures, manifest_digest=digest, image=ref, policy=policy, clock=clock
        )
    except SignatureVerificationError as e:
        if not any(r.trusted_root_json is not None for r in policy.rules):
            raise
        evidence = _verify_referrers(client, pinned_ref, digest, policy, e)
    provenance = None
    if any(r.provenance is not None for r in policy.rules):
        provenance = verify_provenance(
            fetch_attestations(client, pinned_ref), digest=digest, rules=policy.rules
        )
    sbom = find_sbom(client, pinned_ref)
    if (require_sbom or policy.require_sbom) and not sbom.present:
        raise RegistryError(
            f"no SBOM attached to {pinned_ref}: got none (no SPDX/CycloneDX referrer, no .sbom "
            "tag), expected one because the policy sets require_sbom",
            "attach an SBOM to the image digest (cosign attach sbom, oras attach), or unset "
            "require_sbom",
        )
    base = None
    if approved_bases:
        if manifest.is_index:
            raise RegistryError(
                "approved-base check needs a platform manifest, got an index",
                "verify the platform image digest",
            )
        declared = declared_base(manifest)
        base_ref = parse_reference(declared.name).with_digest(declared.digest)
        allowlist.check(base_ref)
        _, base_manifest, _ = client.get_manifest(base_ref)
        base_layers = tuple(d.digest for d in base_manifest.layers)
        base = check_base(manifest, approved_bases, base_layers)
    return VerifiedImage(
        pinned=pinned_ref.pinned(),
        reference=str(pinned_ref),
        allowed_by=allowed_by,
        base=base,
        media_type=manifest.media_type,
        size=len(raw),
        evidence=evidence,
        provenance=provenance,
        sbom=sbom,
    )


def _verify_referrers(
    client: RegistryClient,
    image: ImageReference,
    digest: str,
    policy: VerificationPolicy,
    tag_error: SignatureVerificationError,
) -> SignatureEvidence:
    """A Sigstore bundle referrer accepted by a rule with a trusted root (keys or identities).

    Identities: a DSSE in-toto bundle whose statement names ``digest``. Keys: a key-signed
    message-signature bundle over the manifest itself (its sha256 is ``digest``).
    """
    bundles = fetch_referrer_bundles(client, image)
    failures = [f"sig tag: {tag_error.what}"]
    for i, bundle in enumerate(bundles):
        for rule in policy.rules:
            if rule.trusted_root_json is None:
                continue
            root = rule.trusted_root_json.encode()
            for signer in rule.public_keys or (None,):
                try:
                    if signer is None:
                        ev, _ = verify_attestation_bundle(
                            bundle, digest, identities=rule.identities, trusted_root=root
                        )
                    else:
                        ev = verify_bundle_with_key(
                            bundle, digest, key_pem=signer.encode(), trusted_root=root
                        )
                except SignatureVerificationError as e:
                    failures.append(f"referrer {i + 1}, rule {rule.name!r}: {e.what}")
                    continue
                return SignatureEvidence(
                    manifest_digest=digest,
                    rule=rule.name,
                    signer_kind="key" if signer is not None else "certificate",
                    key_id=ev.subject if signer is not None else "",
                    subject=None if signer is not None else ev.subject,
                    issuer=ev.issuer,
                    log_index=ev.log_index,
                    integrated_time=ev.integrated_time,
                    signed_reference=image.name,
                    signature_index=i,
                    found_via="referrer",
                )
    raise SignatureVerificationError(
        f"no valid signature for {image.name}@{digest}: {len(bundles)} referrer bundle(s) and the "
        "sig tag checked, none satisfies the policy; " + "; ".join(failures),
        "sign the image (sig tag or a Sigstore bundle referrer) by a trusted key or identity",
        failures=tuple(failures),
    )


def pull_image(
    client: RegistryClient,
    verified: VerifiedImage,
    store: OciLayoutStore,
    *,
    platform: Platform | None = None,
) -> str:
    """Fetch the verified digest (and for an index, the chosen platform) into ``store``.

    Returns the digest of the platform image manifest. Every blob's digest and size is checked.
    """
    p = verified.pinned
    ref = ImageReference(registry=p.registry, repository=p.repository, digest=p.digest)
    raw, manifest, digest = client.get_manifest(ref)
    if digest != p.digest:  # get_manifest checks it too; never rely on one check
        raise RegistryError(f"pulled {digest}, expected the verified {p.digest}", "")
    store.put_blob(digest, raw)
    top_media = manifest.media_type
    if manifest.media_type in INDEX_TYPES:
        entry = select_platform(manifest, platform or Platform())
        raw, manifest, digest = client.get_manifest(ref.with_digest(entry.digest))
        if len(raw) != entry.size:
            raise RegistryError(f"manifest {digest}: {len(raw)} bytes, index says {entry.size}", "")
        store.put_blob(digest, raw)
    assert manifest.config is not None  # noqa: S101  (image manifests always have one)
    for d in (manifest.config, *manifest.layers):
        if not store.has_blob(d.digest, d.size) or not store.verify_blob(d.digest):
            store.put_blob(d.digest, client.get_blob(ref, d.digest, d.size))
    store.tag(f"{p.registry}/{p.repository}@{p.digest}", p.digest, top_media, verified.size)
    parse_manifest(raw)  # the stored platform manifest parses (defensive re-check)
    return digest
