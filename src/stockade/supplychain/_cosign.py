"""Cosign's tag-based signatures (``sha256-<hex>.sig``), verified as numbered steps (pure).

Each signature layer is checked in order; the first failing step names itself and says what it got
and what it expected:

1. the layer's media type is the simple-signing type;
2. the signature annotation is present and base64;
3. the signer: a policy key, or the certificate annotation (parsed, supported key type);
4. the signature verifies over the payload bytes under that key;
5. the transparency log: the Rekor SET verifies under a trusted Rekor key and binds this
   signature, payload and signer (required for Fulcio certificates and when the rule asks);
6. the certificate chains to a configured root, valid at the log's integrated time (or now);
7. the certificate identity (SAN) and OIDC issuer match the rule;
8. the payload is a cosign image signature for exactly the manifest digest being verified;
9. the payload's docker-reference matches the image (repository by default; exact or remapped
   only when the rule says so).

An image is verified when *any* signature satisfies *any* rule; a bad signature next to a good one
does not block, and every rejected candidate's reason is kept for the error.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from cryptography import x509
from pydantic import Field

from stockade.models import Clock, Frozen

from ._certs import certificate_identity, verify_chain
from ._crypto import (
    PublicKey,
    b64decode_strict,
    certificate_key,
    key_id,
    load_certificates,
    load_public_key,
    signature_valid,
)
from ._errors import ImageReferenceError, SignatureVerificationError, TrustMaterialError
from ._policy import ReferenceMatch, SignatureRule, VerificationPolicy, normalise_prefix
from ._reference import ImageReference, parse_reference
from ._rekor import verify_set
from ._simplesigning import SIMPLESIGNING_MEDIA_TYPE, parse_payload

__all__ = [
    "ANNOTATION_BUNDLE",
    "ANNOTATION_CERTIFICATE",
    "ANNOTATION_CHAIN",
    "ANNOTATION_SIGNATURE",
    "SignatureEvidence",
    "SignatureLayer",
    "verify_image_signatures",
    "verify_signature_layer",
]

ANNOTATION_SIGNATURE = "dev.cosignproject.cosign/signature"
ANNOTATION_CERTIFICATE = "dev.sigstore.cosign/certificate"
ANNOTATION_CHAIN = "dev.sigstore.cosign/chain"
ANNOTATION_BUNDLE = "dev.sigstore.cosign/bundle"


class SignatureLayer(Frozen):
    """One layer of a cosign signature manifest: its media type, payload blob and annotations."""

    media_type: str
    payload: bytes
    annotations: dict[str, str] = Field(default_factory=dict)


class SignatureEvidence(Frozen):
    """What verified an image: recorded with the run."""

    manifest_digest: str
    rule: str
    signer_kind: Literal["key", "certificate"]
    key_id: str
    subject: str | None = None
    issuer: str | None = None
    log_index: int | None = None
    integrated_time: int | None = None
    signed_reference: str
    signature_index: int
    found_via: Literal["sig-tag", "referrer"] = "sig-tag"


def _fail(step: str, got: str, expected: str) -> SignatureVerificationError:
    return SignatureVerificationError(f"{step}: got {got}, expected {expected}")


def _reference_matches(
    step: str, match: ReferenceMatch, image: ImageReference, signed_text: str
) -> None:
    try:
        signed = parse_reference(signed_text)
    except ImageReferenceError:
        raise _fail(step, f"docker-reference {signed_text!r}", "a valid image reference") from None
    if match.mode == "exact":
        if signed.tag is None or signed.name != image.name or signed.tag != image.tag:
            raise _fail(
                step,
                f"docker-reference {signed_text!r}",
                f"exactly {image.name}:{image.tag}" if image.tag else f"{image.name}:<tag>",
            )
        return
    want = image.name
    if match.mode == "remap":
        assert match.prefix is not None  # noqa: S101  (validated by ReferenceMatch)
        assert match.signed_prefix is not None  # noqa: S101
        prefix = normalise_prefix(match.prefix)
        signed_prefix = normalise_prefix(match.signed_prefix)
        if want == prefix or want.startswith(prefix + "/"):
            want = signed_prefix + want[len(prefix) :]
    if signed.name != want:
        raise _fail(step, f"docker-reference repository {signed.name!r}", f"{want!r}")


def _signer(
    layer: SignatureLayer, rule: SignatureRule, signature: bytes
) -> tuple[PublicKey, x509.Certificate | None]:
    step3, step4 = "step 3 (signer)", "step 4 (signature)"
    if rule.public_keys:
        keys = [load_public_key(pem) for pem in rule.public_keys]
        for key in keys:
            if signature_valid(key, signature, layer.payload):
                return key, None
        raise _fail(
            step4,
            "a signature that verifies under none of the rule's keys",
            f"a signature by one of {len(keys)} trusted key(s)",
        )
    pem = layer.annotations.get(ANNOTATION_CERTIFICATE)
    if not pem:
        raise _fail(step3, "no signing certificate", f"annotation {ANNOTATION_CERTIFICATE}")
    try:
        certs = load_certificates(pem, "signing certificate")
        cert = certs[0]
        key = certificate_key(cert)
    except TrustMaterialError as e:
        raise _fail(step3, e.what, "a PEM signing certificate") from None
    if not signature_valid(key, signature, layer.payload):
        raise _fail(step4, "a signature that does not verify", "a signature by the certificate key")
    return key, cert


def verify_signature_layer(
    layer: SignatureLayer,
    *,
    index: int,
    manifest_digest: str,
    image: ImageReference,
    rule: SignatureRule,
    clock: Clock,
) -> SignatureEvidence:
    """Verify one signature layer against one rule; raise with the failing step otherwise."""
    if layer.media_type != SIMPLESIGNING_MEDIA_TYPE:
        raise _fail("step 1 (media type)", repr(layer.media_type), SIMPLESIGNING_MEDIA_TYPE)
    sig_b64 = layer.annotations.get(ANNOTATION_SIGNATURE)
    if not sig_b64:
        raise _fail("step 2 (signature)", "no signature annotation", ANNOTATION_SIGNATURE)
    try:
        signature = b64decode_strict(sig_b64, "signature annotation")
    except TrustMaterialError as e:
        raise _fail("step 2 (signature)", e.what, "base64") from None
    key, cert = _signer(layer, rule, signature)

    entry = None
    if rule.tlog_required:
        bundle = layer.annotations.get(ANNOTATION_BUNDLE)
        if not bundle:
            raise _fail("step 5 (transparency log)", "no Rekor bundle", ANNOTATION_BUNDLE)
        entry = verify_set(
            "step 5 (transparency log)",
            bundle,
            tuple(load_public_key(k) for k in rule.rekor_keys),
            signature=signature,
            payload=layer.payload,
            signer_key=key,
            signer_cert=cert,
        )

    subject = issuer = None
    if cert is not None:
        at = (
            datetime.fromtimestamp(entry.integrated_time, UTC) if entry is not None else clock.now()
        )
        chain_pem = layer.annotations.get(ANNOTATION_CHAIN, "")
        try:
            untrusted = tuple(load_certificates(chain_pem, "chain")) if chain_pem else ()
        except TrustMaterialError as e:
            raise _fail("step 6 (certificate chain)", e.what, "a PEM chain") from None
        verify_chain(
            "step 6 (certificate chain)",
            cert,
            untrusted=untrusted,
            intermediates=tuple(
                c for pem in rule.certificate_intermediates for c in load_certificates(pem, "ca")
            ),
            roots=tuple(c for pem in rule.certificate_roots for c in load_certificates(pem, "ca")),
            at=at,
            require_code_signing=rule.certificate_authority == "fulcio",
        )
        ident = certificate_identity(cert)
        matched = next(
            (
                m
                for m in rule.identities
                if m.subject_matches(ident.subjects) and m.issuer_matches(ident.issuer)
            ),
            None,
        )
        if matched is None:
            raise _fail(
                "step 7 (identity)",
                f"subject {list(ident.subjects)} issuer {ident.issuer!r}",
                " or ".join(m.describe() for m in rule.identities),
            )
        subject = next(s for s in ident.subjects if matched.subject_matches((s,)))
        issuer = ident.issuer

    payload = parse_payload("step 8 (payload)", layer.payload)
    if payload.manifest_digest != manifest_digest:
        raise _fail(
            "step 8 (payload)",
            f"docker-manifest-digest {payload.manifest_digest}",
            f"{manifest_digest} (the manifest being verified)",
        )
    _reference_matches("step 9 (reference)", rule.reference, image, payload.docker_reference)
    return SignatureEvidence(
        manifest_digest=manifest_digest,
        rule=rule.name,
        signer_kind="key" if cert is None else "certificate",
        key_id=key_id(key),
        subject=subject,
        issuer=issuer,
        log_index=entry.log_index if entry else None,
        integrated_time=entry.integrated_time if entry else None,
        signed_reference=payload.docker_reference,
        signature_index=index,
    )


def verify_image_signatures(
    layers: tuple[SignatureLayer, ...],
    *,
    manifest_digest: str,
    image: ImageReference,
    policy: VerificationPolicy,
    clock: Clock,
) -> SignatureEvidence:
    """The evidence of the first signature that satisfies a rule; else deny with every reason."""
    if not policy.rules:
        raise SignatureVerificationError(
            "no signature rule in the policy: got 0 rules, expected at least one",
            "add a signature rule (keys or certificate identities) for this image",
        )
    if not layers:
        raise SignatureVerificationError(
            f"image {image.name}@{manifest_digest} is unsigned: got 0 signatures, expected 1+",
            "sign the image (stockade image sign / cosign sign) and push the signature",
        )
    failures: list[str] = []
    for index, layer in enumerate(layers):
        for rule in policy.rules:
            try:
                return verify_signature_layer(
                    layer,
                    index=index,
                    manifest_digest=manifest_digest,
                    image=image,
                    rule=rule,
                    clock=clock,
                )
            except SignatureVerificationError as e:
                failures.append(f"signature {index + 1}, rule {rule.name!r}: {e.what}")
    raise SignatureVerificationError(
        f"no valid signature for {image.name}@{manifest_digest}: "
        f"{len(layers)} signature(s) checked, none satisfies the policy; " + "; ".join(failures),
        "check the image is signed by a trusted key or identity for this repository",
        failures=tuple(failures),
    )
