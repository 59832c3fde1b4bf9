"""The ``signatures`` section: who may sign the images a policy runs (fail closed).

Keys are PEM files named relative to the policy's directory (read at load time, never inline);
keyless identities name a certificate subject and OIDC issuer, exactly or as a regular expression
that must match the whole value. An image server names the rules that apply to it under
``verify:``; an image server with no rule is refused at run time (nothing verifies).
"""

from __future__ import annotations

import os
import posixpath
import re
from typing import Any

from pydantic import (
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from ._base import StrictModel as _M
from ._base import bad as _bad
from ._normalise import Finding

__all__ = [
    "ApprovedBaseSpec",
    "IdentitySpec",
    "ProvenanceSpec",
    "SignatureRuleSpec",
    "SignaturesPolicy",
    "read_signature_material",
]

MAX_REGEX = 1024
MAX_KEY_FILE = 64 * 1024
MAX_ROOT_FILE = 4 * 1024 * 1024
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_RULE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")


def _regex(value: str | None, what: str) -> None:
    if value is None:
        return
    if len(value) > MAX_REGEX:
        raise _bad(f"{what} regex is longer than {MAX_REGEX} characters", "shorten it")
    try:
        re.compile(value)
    except re.error as e:
        raise _bad(
            f"{what} regex {value!r} does not compile: {e}",
            "write a Python regular expression; it must match the whole value",
        ) from None


def _rel_path(v: str, what: str) -> str:
    if not v or not v.isprintable() or "\\" in v:
        raise _bad(f"{what} path {v!r} is empty or has control characters", "write keys/x.pub")
    if v.startswith("/"):
        raise _bad(f"{what} path {v!r} is absolute", "name it relative to the policy's directory")
    norm = posixpath.normpath(v)
    if norm == ".." or norm.startswith("../"):
        raise _bad(f"{what} path {v!r} escapes the policy directory", "keep it beside the policy")
    return norm


class IdentitySpec(_M):
    """A keyless signer: certificate subject (SAN) and OIDC issuer, exact or whole-value regex."""

    subject: str | None = None
    subject_regex: str | None = None
    issuer: str | None = None
    issuer_regex: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> IdentitySpec:
        if (self.subject is None) == (self.subject_regex is None):
            raise _bad("an identity needs exactly one of subject / subject_regex", "add subject:")
        if (self.issuer is None) == (self.issuer_regex is None):
            raise _bad(
                "an identity needs exactly one of issuer / issuer_regex",
                "add issuer: https://token.actions.githubusercontent.com (for example)",
            )
        for value, what in ((self.subject, "subject"), (self.issuer, "issuer")):
            if value is not None and (not value or not value.isprintable()):
                raise _bad(f"{what} is empty or has control characters", f"write the {what}")
        _regex(self.subject_regex, "subject")
        _regex(self.issuer_regex, "issuer")
        return self


class ProvenanceSpec(_M):
    """The SLSA provenance a rule requires: builder id and source repository, exact or regex."""

    builder: str | None = None
    builder_regex: str | None = None
    source: str | None = None
    source_regex: str | None = None

    @model_validator(mode="after")
    def _shape(self) -> ProvenanceSpec:
        if (self.builder is None) == (self.builder_regex is None):
            raise _bad(
                "provenance needs exactly one of builder / builder_regex",
                "add builder: https://github.com/slsa-framework/... (the builder id)",
            )
        if (self.source is None) == (self.source_regex is None):
            raise _bad(
                "provenance needs exactly one of source / source_regex",
                "add source: https://github.com/acme/tool (the source repository)",
            )
        for value, what in ((self.builder, "builder"), (self.source, "source")):
            if value is not None and (not value or not value.isprintable()):
                raise _bad(f"provenance {what} is empty or has control characters", "write it")
        _regex(self.builder_regex, "provenance builder")
        _regex(self.source_regex, "provenance source")
        return self


class SignatureRuleSpec(_M):
    """One way an image may be signed: by one of ``keys``, or keyless by one of ``identities``.

    With ``provenance``, an image verified under the rule also needs a SLSA provenance
    attestation signed by the same keys/identities that names this builder and source.
    """

    name: str
    keys: tuple[str, ...] = ()
    identities: tuple[IdentitySpec, ...] = ()
    provenance: ProvenanceSpec | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        out = handler(self)
        if isinstance(out, dict) and out.get("provenance") is None:
            out.pop("provenance", None)  # no provenance: the effective hash is as it was
        return out

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _RULE_NAME.fullmatch(v):
            raise _bad(f"signature rule name {v!r} is not valid", "use letters, digits, _ . -")
        return v

    @field_validator("keys")
    @classmethod
    def _keys(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_rel_path(p, "key") for p in v)

    @model_validator(mode="after")
    def _one_kind(self) -> SignatureRuleSpec:
        if bool(self.keys) == bool(self.identities):
            raise _bad(
                f"signature rule {self.name!r} needs keys or identities (exactly one kind)",
                "list keys: [keys/cosign.pub], or identities: [{subject: ..., issuer: ...}]",
            )
        return self


class ApprovedBaseSpec(_M):
    name: str
    digest: str

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        if not _DIGEST.fullmatch(v):
            raise _bad(f"approved base digest {v!r} is not sha256:<64 hex>", "pin the digest")
        return v


class SignaturesPolicy(_M):
    """Defaults are the safe ones: a digest is required and no rule means nothing verifies."""

    require_digest: bool = True
    require_sbom: bool = False
    trusted_root: str | None = None
    rules: tuple[SignatureRuleSpec, ...] = ()
    approved_bases: tuple[ApprovedBaseSpec, ...] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        out = handler(self)
        if isinstance(out, dict) and out.get("require_sbom") is False:
            out.pop("require_sbom", None)  # the default leaves the effective hash as it was
        return out

    @field_validator("trusted_root")
    @classmethod
    def _root(cls, v: str | None) -> str | None:
        return None if v is None else _rel_path(v, "trusted_root")

    @model_validator(mode="after")
    def _unique(self) -> SignaturesPolicy:
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise _bad("a signature rule name is used twice", "give each rule its own name")
        if any(r.identities for r in self.rules) and self.trusted_root is None:
            raise _bad(
                "keyless identities need a trusted root",
                "add trusted_root: trusted_root.json (the Sigstore trusted root)",
            )
        return self

    def rule(self, name: str) -> SignatureRuleSpec | None:
        return next((r for r in self.rules if r.name == name), None)


def _read(path: str, cap: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        import stat

        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file")
        data = os.read(fd, cap + 1)
    finally:
        os.close(fd)
    if len(data) > cap:
        raise OSError(0, f"larger than {cap} bytes")
    return data


def _check_key(data: bytes) -> str | None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        load_pem_public_key(data)
    except (ValueError, TypeError) as e:
        return f"not a PEM public key ({e})"
    return None


def read_signature_material(
    tree: dict[str, Any], policy_file: str
) -> tuple[dict[str, str], list[Finding]]:
    """Read every key and trusted-root file the raw tree names: relative path -> text."""
    out: dict[str, str] = {}
    errors: list[Finding] = []
    section = tree.get("signatures")
    if not isinstance(section, dict):
        return out, errors
    base = os.path.dirname(os.path.realpath(policy_file))
    wanted: list[tuple[tuple[str | int, ...], str, int, bool]] = []
    root = section.get("trusted_root")
    if isinstance(root, str):
        wanted.append((("signatures", "trusted_root"), root, MAX_ROOT_FILE, False))
    rules = section.get("rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        keys = rule.get("keys") if isinstance(rule, dict) else None
        for j, key in enumerate(keys if isinstance(keys, list) else []):
            if isinstance(key, str):
                wanted.append((("signatures", "rules", i, "keys", j), key, MAX_KEY_FILE, True))
    for where, rel, cap, is_key in wanted:
        try:
            norm = _rel_path(rel, "key" if is_key else "trusted_root")
        except ValueError:
            continue  # the schema pass reports it
        real = os.path.realpath(os.path.join(base, norm))
        if not (real == base or real.startswith(base.rstrip("/") + "/")):
            errors.append(
                Finding(where, f"{rel!r} resolves outside the policy directory", "keep it beside")
            )
            continue
        try:
            data = _read(real, cap)
        except OSError as e:
            errors.append(
                Finding(
                    where,
                    f"cannot read {'key' if is_key else 'trusted root'} file {rel!r}: "
                    f"{e.strerror or e}",
                    f"put the file at {real}, or correct the path (relative to the policy)",
                )
            )
            continue
        problem = _check_key(data) if is_key else None
        if problem is None and not is_key:
            import json

            try:
                json.loads(data)
            except ValueError as e:
                problem = f"not JSON ({e})"
        if problem is not None:
            errors.append(Finding(where, f"file {rel!r} is {problem}", "give the right file"))
            continue
        out[norm] = data.decode("utf-8", "replace")
    return out, errors
