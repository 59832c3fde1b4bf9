"""Attestations attached to an image: SLSA provenance (verified, fail closed) and SBOM discovery.

Provenance, as numbered steps, each failing with "got X, expected Y":

1. find: the cosign ``sha256-<hex>.att`` tag (DSSE envelope layers) and the OCI 1.1 referrers
   (Sigstore bundles) of the image digest; none at all refuses;
2. signature: a DSSE envelope verifies under one of the rule's keys (over the DSSE pre-auth
   encoding), or a referrer bundle verifies under the rule's identities and trusted root;
3. statement / subject: an in-toto statement naming the image digest;
4. type: SLSA provenance v1 or v0.2;
5. builder and source repository: as the rule's ``provenance`` says (exact or anchored regex).

An attestation signed by a rule without ``provenance`` never satisfies a rule with it. SBOMs are
only *recorded* (media type, digest, size of the document), never trusted for a decision.
"""

from __future__ import annotations

import base64
import json

from stockade.models import Frozen

from ._bundle import IN_TOTO_PAYLOAD_TYPE, verify_attestation_bundle
from ._crypto import b64decode_strict, key_id, load_public_key, signature_valid
from ._errors import RegistryError, SignatureVerificationError, TrustMaterialError
from ._manifest import OCI_INDEX, ImageManifest, parse_manifest
from ._policy import SignatureRule
from ._provenance import ProvenanceError, check_provenance
from ._reference import ImageReference
from ._referrers import MAX_REFERRERS, fetch_referrer_bundles, referrers_index
from ._registry import RegistryClient

__all__ = [
    "DSSE_MEDIA_TYPE",
    "SBOM_MEDIA_TYPES",
    "Attestations",
    "ProvenanceEvidence",
    "SbomEvidence",
    "dsse_pae",
    "fetch_attestations",
    "find_sbom",
    "verify_provenance",
]

DSSE_MEDIA_TYPE = "application/vnd.dsse.envelope.v1+json"
SBOM_MEDIA_TYPES = (
    "application/spdx+json",
    "text/spdx",
    "application/vnd.cyclonedx+json",
    "application/vnd.cyclonedx+xml",
    "application/vnd.cyclonedx",
    "application/vnd.syft+json",
)
MAX_ENVELOPE = 1024 * 1024
MAX_ATTESTATIONS = 32


class ProvenanceEvidence(Frozen):
    rule: str
    source: str  # "att-tag" or "referrer"
    signer: str  # key id, or certificate subject
    predicate_type: str
    builder_id: str
    source_repository: str


class SbomEvidence(Frozen):
    present: bool
    media_type: str | None = None
    digest: str | None = None
    size: int | None = None
    found_via: str | None = None  # "referrer" or "sbom-tag"


class Attestations(Frozen):
    """Unverified attestations found for one digest: ``.att`` DSSE envelopes, referrer bundles."""

    envelopes: tuple[bytes, ...] = ()
    bundles: tuple[bytes, ...] = ()


def _fail(step: str, got: str, expected: str) -> ProvenanceError:
    return ProvenanceError(
        f"{step}: got {got}, expected {expected}",
        "attach a signed SLSA provenance attestation for this digest (cosign attest, or a "
        "Sigstore bundle referrer) by the rule's signer, built by the approved builder",
    )


def dsse_pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding: what a DSSE signature covers."""
    t = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(t), t, len(payload), payload)


def _tag(image: ImageReference, suffix: str) -> ImageReference:
    assert image.digest is not None  # noqa: S101  (callers pass pinned references)
    algorithm, _, hexpart = image.digest.partition(":")
    return ImageReference(
        registry=image.registry, repository=image.repository, tag=f"{algorithm}-{hexpart}.{suffix}"
    )


def _tag_manifest(client: RegistryClient, ref: ImageReference) -> ImageManifest | None:
    try:
        _, manifest, _ = client.get_manifest(ref)
    except RegistryError as e:
        if "not found" in e.what:
            return None
        raise
    if manifest.is_index:
        raise RegistryError(f"{ref}: got an index, expected an attestation manifest", "")
    return manifest


def fetch_attestations(client: RegistryClient, image: ImageReference) -> Attestations:
    """DSSE envelopes of the ``.att`` tag and Sigstore bundles among the referrers (unverified)."""
    envelopes: list[bytes] = []
    att = _tag(image, "att")
    manifest = _tag_manifest(client, att)
    if manifest is not None:
        for d in manifest.layers[:MAX_ATTESTATIONS]:
            if d.media_type != DSSE_MEDIA_TYPE:
                continue
            if d.size > MAX_ENVELOPE:
                raise RegistryError(f"{att}: attestation of {d.size} bytes", "")
            envelopes.append(client.get_blob(att, d.digest, d.size))
    return Attestations(envelopes=tuple(envelopes), bundles=fetch_referrer_bundles(client, image))


def _envelope_statement(envelope: bytes, rule: SignatureRule) -> tuple[bytes, str]:
    """Step 2 for a DSSE envelope: the in-toto payload and the key id that signed it."""
    step = "provenance step 2 (signature)"
    try:
        doc = json.loads(envelope)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(step, "an envelope that is not JSON", "a DSSE envelope") from None
    if not isinstance(doc, dict) or doc.get("payloadType") != IN_TOTO_PAYLOAD_TYPE:
        got = doc.get("payloadType") if isinstance(doc, dict) else None
        raise _fail(step, f"payloadType {str(got)[:80]!r}", IN_TOTO_PAYLOAD_TYPE)
    sigs = doc.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise _fail(step, "an unsigned envelope", "a DSSE signature by a rule key")
    try:
        payload = b64decode_strict(str(doc.get("payload", "")), "DSSE payload")
    except TrustMaterialError as e:
        raise _fail(step, e.what, "base64") from None
    if not rule.public_keys:
        raise _fail(step, "a key-signed envelope", f"a bundle by rule {rule.name!r}'s identities")
    pae = dsse_pae(IN_TOTO_PAYLOAD_TYPE, payload)
    for entry in sigs[:8]:
        sig_text = entry.get("sig") if isinstance(entry, dict) else None
        if not isinstance(sig_text, str):
            continue
        try:
            sig = base64.b64decode(sig_text, validate=True)
        except ValueError:
            continue
        for pem in rule.public_keys:
            key = load_public_key(pem)
            if signature_valid(key, sig, pae):
                return payload, key_id(key)
    raise _fail(step, "no signature that verifies", f"a signature by rule {rule.name!r}'s keys")


def verify_provenance(
    found: Attestations, *, digest: str, rules: tuple[SignatureRule, ...]
) -> ProvenanceEvidence:
    """The first attestation that passes every step under a rule with ``provenance``; else deny."""
    wanting = tuple(r for r in rules if r.provenance is not None)
    if not wanting:
        raise _fail("provenance", "no rule with provenance", "a rule that names builder/source")
    if not found.envelopes and not found.bundles:
        raise _fail(
            "provenance step 1 (find)",
            f"no attestation attached to {digest} (no .att tag, no referrer bundle)",
            "a SLSA provenance attestation",
        )
    failures: list[str] = []
    for rule in wanting:
        assert rule.provenance is not None  # noqa: S101
        candidates: list[tuple[str, str, bytes]] = []  # (source, signer, statement)
        for i, env in enumerate(found.envelopes):
            try:
                statement, signer = _envelope_statement(env, rule)
            except ProvenanceError as e:
                failures.append(f"attestation {i + 1}, rule {rule.name!r}: {e.what}")
                continue
            candidates.append(("att-tag", signer, statement))
        for i, bundle in enumerate(found.bundles):
            if not rule.identities or rule.trusted_root_json is None:
                failures.append(
                    f"referrer {i + 1}, rule {rule.name!r}: provenance step 2 (signature): got a "
                    "Sigstore bundle, expected identities and a trusted root in the rule"
                )
                continue
            try:
                ev, statement = verify_attestation_bundle(
                    bundle,
                    digest,
                    identities=rule.identities,
                    trusted_root=rule.trusted_root_json.encode(),
                )
            except SignatureVerificationError as e:
                failures.append(f"referrer {i + 1}, rule {rule.name!r}: step 2: {e.what}")
                continue
            candidates.append(("referrer", ev.subject, statement))
        for source, signer, statement in candidates:
            try:
                result = check_provenance(statement, digest=digest, policy=rule.provenance)
            except ProvenanceError as e:
                failures.append(f"{source} by {signer}, rule {rule.name!r}: {e.what}")
                continue
            return ProvenanceEvidence(
                rule=rule.name,
                source=source,
                signer=signer,
                predicate_type=result.predicate_type,
                builder_id=result.builder_id,
                source_repository=result.source,
            )
    raise ProvenanceError(
        f"no valid SLSA provenance for {digest}: " + "; ".join(failures[:16]),
        "attach a provenance attestation signed by the rule's signer, for this digest, from "
        "the approved builder and source repository",
    )


def _sbom_layer(manifest: ImageManifest) -> tuple[str, str, int] | None:
    for d in manifest.layers:
        if d.media_type.split(";")[0].strip() in SBOM_MEDIA_TYPES:
            return d.media_type, d.digest, d.size
    return None


def find_sbom(client: RegistryClient, image: ImageReference) -> SbomEvidence:
    """The first SBOM attached as a referrer (SPDX/CycloneDX artifact type) or ``.sbom`` tag."""
    raw = referrers_index(client, image)
    if raw is not None:
        index = parse_manifest(raw, OCI_INDEX)
        for entry in index.manifests[:MAX_REFERRERS]:
            atype = (entry.artifact_type or "").split(";")[0].strip()
            if atype not in SBOM_MEDIA_TYPES:
                continue
            _, manifest, _ = client.get_manifest(image.with_digest(entry.digest))
            layer = None if manifest.is_index else _sbom_layer(manifest)
            if layer is not None:
                return SbomEvidence(
                    present=True,
                    media_type=layer[0],
                    digest=layer[1],
                    size=layer[2],
                    found_via="referrer",
                )
    tagged = _tag_manifest(client, _tag(image, "sbom"))
    layer = None if tagged is None else _sbom_layer(tagged)
    if layer is not None:
        return SbomEvidence(
            present=True, media_type=layer[0], digest=layer[1], size=layer[2], found_via="sbom-tag"
        )
    return SbomEvidence(present=False)
