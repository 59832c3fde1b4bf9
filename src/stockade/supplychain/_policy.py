"""The verification policy the supply chain enforces (frozen; the policy loader maps onto it).

A :class:`VerificationPolicy` is a set of :class:`SignatureRule`; an image is verified when at
least one of its signatures satisfies at least one rule. No rule means nothing verifies (deny).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from stockade.models import Frozen

from ._crypto import load_certificates, load_public_key
from ._errors import TrustMaterialError
from ._provenance import ProvenancePolicy
from ._reference import parse_reference

__all__ = ["IdentityMatcher", "ReferenceMatch", "SignatureRule", "VerificationPolicy"]

MAX_REGEX = 1024


def _compile(pattern: str, what: str) -> re.Pattern[str]:
    if len(pattern) > MAX_REGEX:
        raise ValueError(f"{what} regex longer than {MAX_REGEX} characters")
    try:
        return re.compile(pattern)
    except re.error as e:
        raise ValueError(f"{what} regex {pattern!r} does not compile: {e}") from None


def normalise_prefix(prefix: str) -> str:
    """``registry`` or ``registry/namespace`` in canonical form (no ``library/`` for namespaces)."""
    text = prefix.rstrip("/")
    if "/" not in text:
        return parse_reference(f"{text}/a/x").registry
    ref = parse_reference(f"{text}/x")
    if ref.tag is not None or ref.digest is not None:
        raise ValueError(f"prefix {prefix!r} has a tag or digest")
    return ref.name.removesuffix("/x")


class IdentityMatcher(Frozen):
    """Who may have signed: a certificate subject (SAN) and, for Fulcio, its OIDC issuer.

    Exact strings, or regular expressions that must match the *whole* value (always anchored at
    both ends: ``re.fullmatch``; ``.*`` inside a pattern is allowed but nothing is implicit).
    """

    subject: str | None = None
    subject_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None

    @model_validator(mode="after")
    def _one_each(self) -> IdentityMatcher:
        if (self.subject is None) == (self.subject_regex is None):
            raise ValueError("set exactly one of subject / subject_regex")
        if self.issuer is not None and self.issuer_regex is not None:
            raise ValueError("set at most one of issuer / issuer_regex")
        for value, what in ((self.subject_regex, "subject"), (self.issuer_regex, "issuer")):
            if value is not None:
                _compile(value, what)
        return self

    def subject_matches(self, subjects: tuple[str, ...]) -> bool:
        if self.subject is not None:
            return self.subject in subjects
        assert self.subject_regex is not None  # noqa: S101  (validator guarantees one)
        pattern = _compile(self.subject_regex, "subject")
        return any(pattern.fullmatch(s) for s in subjects)

    def issuer_matches(self, issuer: str | None) -> bool:
        if self.issuer is None and self.issuer_regex is None:
            return True  # only for PKI rules: SignatureRule forbids it for Fulcio
        if issuer is None:
            return False
        if self.issuer is not None:
            return issuer == self.issuer
        assert self.issuer_regex is not None  # noqa: S101
        return _compile(self.issuer_regex, "issuer").fullmatch(issuer) is not None

    def describe(self) -> str:
        subject = self.subject if self.subject is not None else f"/{self.subject_regex}/"
        issuer = self.issuer if self.issuer is not None else f"/{self.issuer_regex}/"
        return f"{subject} from {issuer}"


class ReferenceMatch(Frozen):
    """How the payload's ``docker-reference`` must relate to the image being verified.

    ``repository`` (default): same registry and repository, tag ignored. ``exact``: same name and
    the same tag (the signature must carry one). ``remap``: the image's name with ``prefix``
    replaced by ``signed_prefix`` must equal the signed repository (for mirrors).
    """

    mode: Literal["repository", "exact", "remap"] = "repository"
    prefix: str | None = None
    signed_prefix: str | None = None

    @model_validator(mode="after")
    def _remap(self) -> ReferenceMatch:
        if (self.mode == "remap") != (self.prefix is not None and self.signed_prefix is not None):
            raise ValueError("remap needs prefix and signed_prefix; other modes take neither")
        return self


class SignatureRule(Frozen):
    """One way an image may be signed: by a listed key, or by a certificate under listed roots."""

    name: str = Field(min_length=1)
    public_keys: tuple[str, ...] = ()  # PEM SubjectPublicKeyInfo
    certificate_roots: tuple[str, ...] = ()  # PEM trust anchors
    certificate_intermediates: tuple[str, ...] = ()  # PEM, trusted as intermediates only
    certificate_authority: Literal["fulcio", "pki"] = "fulcio"
    identities: tuple[IdentityMatcher, ...] = ()
    rekor_keys: tuple[str, ...] = ()
    require_tlog: bool = False  # always on for Fulcio certificates
    reference: ReferenceMatch = ReferenceMatch()
    # Sigstore trusted root (JSON) for bundles attached as OCI referrers; none: referrers unused
    trusted_root_json: str | None = None
    # when set, a SLSA provenance attestation by this rule's signer must match it
    provenance: ProvenancePolicy | None = None

    @field_validator("public_keys", "rekor_keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pem in v:
            try:
                load_public_key(pem)
            except TrustMaterialError as e:
                raise ValueError(e.what) from None
        return v

    @field_validator("certificate_roots", "certificate_intermediates")
    @classmethod
    def _certs(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for pem in v:
            try:
                load_certificates(pem, "certificate")
            except TrustMaterialError as e:
                raise ValueError(e.what) from None
        return v

    @model_validator(mode="after")
    def _shape(self) -> SignatureRule:
        keyed = bool(self.public_keys)
        certified = bool(self.certificate_roots)
        if keyed == certified:
            raise ValueError(f"rule {self.name!r}: set public_keys or certificate_roots (not both)")
        if certified and not self.identities:
            raise ValueError(f"rule {self.name!r}: certificate rules need identities")
        if keyed and self.identities:
            raise ValueError(f"rule {self.name!r}: identities apply to certificates only")
        if self.tlog_required and not self.rekor_keys:
            raise ValueError(f"rule {self.name!r}: a transparency log check needs rekor_keys")
        if certified and self.certificate_authority == "fulcio":
            for ident in self.identities:
                if ident.issuer is None and ident.issuer_regex is None:
                    raise ValueError(f"rule {self.name!r}: Fulcio identities need an issuer")
        if self.reference.mode == "remap":
            assert self.reference.prefix is not None  # noqa: S101
            assert self.reference.signed_prefix is not None  # noqa: S101
            for p in (self.reference.prefix, self.reference.signed_prefix):
                normalise_prefix(p)
        return self

    @property
    def tlog_required(self) -> bool:
        return self.require_tlog or (
            bool(self.certificate_roots) and self.certificate_authority == "fulcio"
        )


class VerificationPolicy(Frozen):
    rules: tuple[SignatureRule, ...] = ()
    require_sbom: bool = False  # an image with no attached SBOM is refused
