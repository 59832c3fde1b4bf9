"""Registry allowlist: which registries and repositories an image may come from (pure).

A rule is either an exact repository (``ghcr.io/acme/tool``) or a prefix pattern ending in
``/*`` (``ghcr.io/acme/*`` admits ``ghcr.io/acme/tool`` and ``ghcr.io/acme/team/tool``, never
``ghcr.io/acme`` itself nor ``ghcr.io/acmeX/...``). ``registry/*`` admits every repository of one
registry. Rules are normalised like references (``nginx`` is ``docker.io/library/nginx``). No other
wildcard exists. An empty allowlist denies everything; a denial names the nearest rule.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from stockade.models import Frozen

from ._errors import ImageReferenceError, RegistryDeniedError
from ._reference import ImageReference, parse_reference

__all__ = ["AllowlistDecision", "RegistryAllowlist", "RegistryRule"]


class RegistryRule(Frozen):
    """One allowlist entry, normalised: ``registry`` plus either an exact repository or a prefix."""

    pattern: str = Field(min_length=1)
    registry: str
    repository: str | None  # exact repository, or the prefix (without "/*"); None: whole registry
    is_prefix: bool

    @classmethod
    def parse(cls, pattern: str) -> RegistryRule:
        fix = "write registry/namespace/* or an exact registry/repository"
        text = pattern.strip()
        is_prefix = text.endswith("/*")
        body = text[:-2] if is_prefix else text
        if "*" in body or "@" in body or not body:
            raise ImageReferenceError(
                f"invalid allowlist rule {pattern!r}: got a wildcard, digest or empty name, "
                "expected '*' only as the last path element",
                fix,
            )
        if is_prefix:
            if "/" not in body and _looks_like_registry(body):
                ref = parse_reference(f"{body}/x/x")
                return cls(pattern=text, registry=ref.registry, repository=None, is_prefix=True)
            ref = parse_reference(f"{body}/x")  # no library/ rule for a namespace prefix
            if ref.tag is not None or ref.digest is not None:
                raise ImageReferenceError(f"invalid allowlist rule {pattern!r}", fix)
            prefix = ref.repository.removesuffix("/x")
            return cls(pattern=text, registry=ref.registry, repository=prefix, is_prefix=True)
        ref = parse_reference(body)
        if ref.tag is not None:
            raise ImageReferenceError(
                f"invalid allowlist rule {pattern!r}: got tag {ref.tag!r}, expected no tag", fix
            )
        return cls(pattern=text, registry=ref.registry, repository=ref.repository, is_prefix=False)

    def matches(self, ref: ImageReference) -> bool:
        if ref.registry != self.registry:
            return False
        if self.repository is None:
            return True
        if self.is_prefix:
            return ref.repository.startswith(self.repository + "/")
        return ref.repository == self.repository

    def closeness(self, ref: ImageReference) -> tuple[bool, int, int]:
        """How near this rule is to ``ref`` (same registry, shared path elements, shared text)."""
        mine = [] if self.repository is None else self.repository.split("/")
        theirs = ref.repository.split("/")
        shared = 0
        for a, b in zip(mine, theirs, strict=False):
            if a != b:
                break
            shared += 1
        text = 0
        for a, b in zip(str(self.pattern), ref.name, strict=False):
            if a != b:
                break
            text += 1
        return (self.registry == ref.registry, shared, text)


def _looks_like_registry(text: str) -> bool:
    return "." in text or ":" in text or text == "localhost"


class AllowlistDecision(Frozen):
    allowed: bool
    rule: str | None
    reason: str


class RegistryAllowlist(Frozen):
    """An ordered set of rules; the first matching rule admits the image."""

    rules: tuple[RegistryRule, ...] = ()

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: tuple[RegistryRule, ...]) -> tuple[RegistryRule, ...]:
        return tuple(dict.fromkeys(v))

    @classmethod
    def of(cls, *patterns: str) -> RegistryAllowlist:
        return cls(rules=tuple(RegistryRule.parse(p) for p in patterns))

    def evaluate(self, ref: ImageReference) -> AllowlistDecision:
        for rule in self.rules:
            if rule.matches(ref):
                return AllowlistDecision(
                    allowed=True, rule=rule.pattern, reason=f"{ref.name} allowed by {rule.pattern}"
                )
        if not self.rules:
            return AllowlistDecision(
                allowed=False,
                rule=None,
                reason=f"registry allowlist is empty: got {ref.name}, expected an allowlisted name",
            )
        nearest = max(self.rules, key=lambda r: r.closeness(ref))
        return AllowlistDecision(
            allowed=False,
            rule=nearest.pattern,
            reason=f"{ref.name} is not allowlisted: got {ref.name}, "
            f"expected a name matching a rule; nearest rule: {nearest.pattern}",
        )

    def check(self, ref: ImageReference) -> str:
        """The pattern that admits ``ref``; raises :class:`RegistryDeniedError` otherwise."""
        decision = self.evaluate(ref)
        if not decision.allowed:
            raise RegistryDeniedError(
                decision.reason,
                "use an image from an allowlisted registry, or add its registry/namespace/* "
                "rule to the policy",
            )
        assert decision.rule is not None  # noqa: S101  (allowed implies a rule)
        return decision.rule
