"""Sigstore bundles (v0.1-v0.3), verified offline against a given trusted root with sigstore-python.

Steps, each failing with "step N: got X, expected Y":

1. the trusted root parses (a missing or unreadable root refuses: no implicit network fetch);
2. the bundle parses and carries a certificate and an inclusion promise or signed time;
3. sigstore-python checks the certificate chain to the root's Fulcio CAs at the log's time, the
   embedded SCT, the Rekor entry (inclusion proof with checkpoint, SET) and the signature over the
   artifact (or the DSSE envelope) and the log body's consistency;
4. the certificate identity (SAN) and OIDC issuer match one of the policy's identities (exact, or
   regular expressions anchored at both ends);
5. for DSSE in-toto attestations: the statement's subject names the expected digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

from cryptography import x509
from pydantic import ValidationError
from sigstore.errors import Error as SigstoreError
from sigstore.errors import VerificationError as SigstoreVerificationError
from sigstore.hashes import Hashed
from sigstore.models import Bundle, TrustedRoot
from sigstore.verify import Verifier
from sigstore_models.common.v1 import HashAlgorithm
from sigstore_models.trustroot import v1 as trustroot_v1

from stockade.models import Frozen

from ._certs import certificate_identity
from ._errors import SignatureVerificationError, TrustMaterialError
from ._policy import IdentityMatcher

__all__ = [
    "BundleEvidence",
    "load_trusted_root",
    "verify_attestation_bundle",
    "verify_bundle",
]

MAX_BUNDLE = 1024 * 1024
MAX_TRUSTED_ROOT = 1024 * 1024
_SHA256 = re.compile(r"sha256:[0-9a-f]{64}")
IN_TOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


class BundleEvidence(Frozen):
    kind: Literal["message_signature", "dsse"]
    subject: str
    issuer: str | None
    log_index: int
    integrated_time: int
    artifact_digest: str
    payload_type: str | None = None


def _fail(step: str, got: str, expected: str) -> SignatureVerificationError:
    return SignatureVerificationError(f"{step}: got {got}, expected {expected}")


def load_trusted_root(raw: bytes) -> TrustedRoot:
    """Step 1: a Sigstore trusted root (``trusted_root.json``) from its bytes."""
    if len(raw) > MAX_TRUSTED_ROOT:
        raise TrustMaterialError(
            f"step 1 (trusted root): got {len(raw)} bytes, expected at most {MAX_TRUSTED_ROOT}",
            "pass the Sigstore trusted_root.json",
        )
    try:
        return TrustedRoot(trustroot_v1.TrustedRoot.from_json(raw))
    except (SigstoreError, ValidationError, ValueError) as e:
        raise TrustMaterialError(
            f"step 1 (trusted root): got an unreadable trusted root ({type(e).__name__}), "
            "expected a Sigstore trusted_root.json",
            "pass --trusted-root with the trusted_root.json of your Sigstore instance",
        ) from None


class _IdentityPolicy:
    """sigstore-python's policy hook, doing stockade's anchored identity match (step 4)."""

    def __init__(self, identities: tuple[IdentityMatcher, ...]) -> None:
        self.identities = identities
        self.matched: tuple[str, str | None] | None = None

    def verify(self, cert: x509.Certificate) -> None:
        ident = certificate_identity(cert)
        for m in self.identities:
            if m.subject_matches(ident.subjects) and m.issuer_matches(ident.issuer):
                subject = next(s for s in ident.subjects if m.subject_matches((s,)))
                self.matched = (subject, ident.issuer)
                return
        raise SigstoreVerificationError(
            f"step 4 (identity): got subject {list(ident.subjects)} issuer {ident.issuer!r}, "
            f"expected {' or '.join(m.describe() for m in self.identities)}"
        )


def _parse_bundle(raw: bytes) -> Bundle:
    if len(raw) > MAX_BUNDLE:
        raise _fail("step 2 (bundle)", f"{len(raw)} bytes", f"at most {MAX_BUNDLE} bytes")
    try:
        return Bundle.from_json(raw)
    except (SigstoreError, ValidationError, ValueError) as e:
        raise _fail(
            "step 2 (bundle)", f"an invalid bundle: {e}", "a valid Sigstore bundle"
        ) from None


def _evidence_common(bundle: Bundle, policy: _IdentityPolicy) -> tuple[str, str | None, int, int]:
    if policy.matched is None:  # sigstore returned without calling the policy: never accept
        raise _fail("step 4 (identity)", "no identity check", "a matched identity")
    entry = bundle.log_entry._inner
    itime = entry.integrated_time if entry.integrated_time is not None else -1
    return policy.matched[0], policy.matched[1], int(entry.log_index), int(itime)


def _artifact(artifact: bytes | str) -> tuple[bytes | Hashed, str]:
    if isinstance(artifact, str):
        if not _SHA256.fullmatch(artifact):
            raise _fail("step 3 (artifact)", repr(artifact[:80]), "sha256:<64 lower-case hex>")
        digest = bytes.fromhex(artifact.removeprefix("sha256:"))
        return Hashed(algorithm=HashAlgorithm.SHA2_256, digest=digest), artifact
    return artifact, "sha256:" + hashlib.sha256(artifact).hexdigest()


def verify_bundle(
    bundle_json: bytes,
    artifact: bytes | str,
    *,
    identities: tuple[IdentityMatcher, ...],
    trusted_root: bytes,
) -> BundleEvidence:
    """Verify a message-signature bundle over ``artifact`` (its bytes, or ``sha256:<hex>``)."""
    if not identities:
        raise _fail("step 4 (identity)", "no identity in the policy", "at least one identity")
    root = load_trusted_root(trusted_root)
    bundle = _parse_bundle(bundle_json)
    target, digest = _artifact(artifact)
    policy = _IdentityPolicy(identities)
    try:
        Verifier(trusted_root=root).verify_artifact(target, bundle, policy)
    except SigstoreError as e:
        text = str(e)
        raise SignatureVerificationError(
            text
            if text.startswith("step ")
            else f"step 3 (sigstore): got {text}, expected "
            "a bundle that verifies against the trusted root",
            "check the bundle, the artifact and the trusted root belong together",
        ) from None
    subject, issuer, log_index, itime = _evidence_common(bundle, policy)
    return BundleEvidence(
        kind="message_signature",
        subject=subject,
        issuer=issuer,
        log_index=log_index,
        integrated_time=itime,
        artifact_digest=digest,
    )


def _statement_digests(payload: bytes) -> list[str]:
    try:
        statement = json.loads(payload)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise _fail(
            "step 5 (statement)", "a payload that is not JSON", "an in-toto statement"
        ) from None
    subjects = statement.get("subject") if isinstance(statement, dict) else None
    if not isinstance(subjects, list):
        raise _fail("step 5 (statement)", "no subject list", "an in-toto statement with subjects")
    out: list[str] = []
    for s in subjects:
        digest = s.get("digest") if isinstance(s, dict) else None
        if isinstance(digest, dict) and isinstance(digest.get("sha256"), str):
            out.append("sha256:" + digest["sha256"])
    return out


def verify_attestation_bundle(
    bundle_json: bytes,
    subject_digest: str,
    *,
    identities: tuple[IdentityMatcher, ...],
    trusted_root: bytes,
) -> tuple[BundleEvidence, bytes]:
    """Verify a DSSE in-toto bundle whose statement must name ``subject_digest``."""
    if not identities:
        raise _fail("step 4 (identity)", "no identity in the policy", "at least one identity")
    if not _SHA256.fullmatch(subject_digest):
        raise _fail("step 5 (statement)", repr(subject_digest[:80]), "sha256:<64 hex>")
    root = load_trusted_root(trusted_root)
    bundle = _parse_bundle(bundle_json)
    policy = _IdentityPolicy(identities)
    try:
        payload_type, payload = Verifier(trusted_root=root).verify_dsse(bundle, policy)
    except SigstoreError as e:
        text = str(e)
        raise SignatureVerificationError(
            text
            if text.startswith("step ")
            else f"step 3 (sigstore): got {text}, expected "
            "a DSSE bundle that verifies against the trusted root",
            "check the bundle and the trusted root belong together",
        ) from None
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise _fail("step 5 (statement)", f"payload type {payload_type!r}", IN_TOTO_PAYLOAD_TYPE)
    digests = _statement_digests(payload)
    if subject_digest not in digests:
        raise _fail(
            "step 5 (statement)",
            f"subjects {digests}",
            f"a subject with digest {subject_digest}",
        )
    subject, issuer, log_index, itime = _evidence_common(bundle, policy)
    evidence = BundleEvidence(
        kind="dsse",
        subject=subject,
        issuer=issuer,
        log_index=log_index,
        integrated_time=itime,
        artifact_digest=subject_digest,
        payload_type=payload_type,
    )
    return evidence, payload
