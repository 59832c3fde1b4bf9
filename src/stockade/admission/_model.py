"""Frozen value types of the admission validator: levels, rules, violations and results."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ValidationError, field_validator

from stockade.errors import InputError, UsageError
from stockade.models import Frozen

from ._images import parse_registry_pattern

__all__ = [
    "AdmissionResult",
    "Level",
    "ManifestError",
    "StockadeRules",
    "Verdict",
    "Violation",
]


class ManifestError(InputError):
    """A manifest could not be evaluated: wrong shape, unknown kind, or a field of the wrong type.

    Raised instead of guessing (fail closed); the CLI turns it into exit code 2.
    """


class Level(StrEnum):
    """Evaluation level; each level denies everything the one before it denies, and more."""

    BASELINE = "baseline"
    RESTRICTED = "restricted"
    STOCKADE = "stockade"


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"


class Violation(Frozen):
    """One failed check: which check, the field path it read, what is wrong, and how to fix it."""

    check: str
    path: str
    message: str
    fix: str


class AdmissionResult(Frozen):
    """The verdict on one document.

    ``workload`` is False for inert kinds (ConfigMap, Service, ...) that cannot run code: no check
    applies to them and they are allowed.
    """

    kind: str
    name: str
    verdict: Verdict
    violations: tuple[Violation, ...] = ()
    workload: bool = True


class StockadeRules(Frozen):
    """The operator's grants for the ``stockade`` level.

    ``allowed_registries`` holds patterns ``registry/namespace/*`` (or an exact repository);
    an empty tuple denies every image (fail closed). ``granted_secrets`` names the Secrets a
    workload may reference; every other Secret reference is denied.
    """

    allowed_registries: tuple[str, ...] = ()
    granted_secrets: frozenset[str] = frozenset()

    @field_validator("allowed_registries")
    @classmethod
    def _patterns_parse(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for pattern in value:
            parse_registry_pattern(pattern)  # raises ValueError with got/expected
        return value

    @classmethod
    def of(
        cls, registries: tuple[str, ...] = (), secrets: frozenset[str] = frozenset()
    ) -> StockadeRules:
        """Build rules, turning an invalid registry pattern into a :class:`UsageError`."""
        try:
            return cls(allowed_registries=tuple(registries), granted_secrets=frozenset(secrets))
        except ValidationError as e:
            detail = "; ".join(str(err.get("msg", "")) for err in e.errors())
            raise UsageError(
                f"invalid registry pattern: {detail}",
                "write patterns as HOST/NAMESPACE/* (e.g. ghcr.io/acme/*) or an exact repository",
            ) from e
