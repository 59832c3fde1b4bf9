"""Tool rules of the policy schema: actions, tiers, categories, argument rules, rate limits."""

from __future__ import annotations

import functools
import json
import posixpath
import re
from typing import Any, Literal

import jsonschema
from pydantic import Field, field_validator, model_validator

from stockade.models import Category, RiskTier

from ._base import StrictModel as _M
from ._base import bad as _bad
from ._patterns import validate_domain_pattern

__all__ = ["ArgumentRule", "Arguments", "RateLimit", "ToolRule", "ToolsPolicy"]

_GLOB_OK = re.compile(r"[A-Za-z0-9_.:/*?\[\]!-]{1,200}")
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)\s*[+*{]")


class ArgumentRule(_M):
    """Constraints on one argument; every rule given must hold (absent argument: not checked)."""

    enum: tuple[str | int | float | bool, ...] | None = None
    pattern: str | None = None
    prefix: str | None = None
    path_under: tuple[str, ...] | None = None
    max_length: int | None = Field(default=None, ge=0, le=1_000_000)
    domains: tuple[str, ...] | None = None

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if len(v) > 1000:
            raise _bad("pattern is longer than 1000 characters", "simplify the pattern")
        if _NESTED_QUANTIFIER.search(v):
            raise _bad(
                f"pattern {v!r} nests quantifiers (catastrophic backtracking risk)",
                "remove the nested repetition, e.g. (a+)+ -> a+",
            )
        try:
            re.compile(v)
        except re.error as e:
            raise _bad(f"pattern {v!r} does not compile: {e}", "fix the regular expression") from e
        return v

    @field_validator("path_under")
    @classmethod
    def _paths(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v:
            raise _bad("path_under is empty (would deny everything)", "list at least one prefix")
        out = []
        for p in v:
            if not p.startswith("/") or ".." in p.split("/") or not p.isprintable():
                raise _bad(
                    f"path_under prefix {p!r} must be an absolute path without '..'",
                    "write it like /data/reports",
                )
            out.append(posixpath.normpath(p))
        return tuple(out)

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v:
            raise _bad("domains is empty (would deny everything)", "list at least one domain")
        try:
            return tuple(validate_domain_pattern(d) for d in v)
        except ValueError as e:
            raise _bad(str(e), "use api.example.com or *.example.com") from e

    @model_validator(mode="after")
    def _some(self) -> ArgumentRule:
        if all(getattr(self, k) is None for k in type(self).model_fields):
            raise _bad(
                "argument rule has no constraint",
                "give one of enum, pattern, prefix, path_under, max_length, domains",
            )
        return self


class Arguments(_M):
    """``json_schema`` validates the whole arguments object; ``rules`` constrain named ones."""

    json_schema: dict[str, Any] | None = None
    rules: dict[str, ArgumentRule] = Field(default_factory=dict)

    @field_validator("json_schema")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        problem = _schema_problem(json.dumps(v, sort_keys=True))
        if problem is not None:
            raise _bad(
                f"json_schema is not a valid JSON Schema: {problem}",
                "correct the schema (JSON Schema draft 2020-12)",
            )
        if "$ref" in str(v) and any(isinstance(r, str) and not r.startswith("#") for r in _refs(v)):
            raise _bad("json_schema has a remote $ref", "inline the referenced schema")
        return v


@functools.lru_cache(maxsize=1024)
def _schema_problem(schema_json: str) -> str | None:
    """Check a schema once per distinct schema (policies repeat the same ones)."""
    try:
        jsonschema.Draft202012Validator.check_schema(json.loads(schema_json))
    except jsonschema.SchemaError as e:
        return str(e.message)
    return None


def _refs(v: Any) -> list[Any]:
    if isinstance(v, dict):
        out = [v["$ref"]] if "$ref" in v else []
        for x in v.values():
            out += _refs(x)
        return out
    if isinstance(v, list):
        return [r for x in v for r in _refs(x)]
    return []


class RateLimit(_M):
    """Token bucket: ``rate`` tokens per ``per`` seconds, holding at most ``burst``."""

    rate: int = Field(ge=1, le=1_000_000)
    per: float = Field(default=60, gt=0, le=86400)
    burst: int | None = Field(default=None, ge=1, le=1_000_000)

    @property
    def capacity(self) -> int:
        return self.burst if self.burst is not None else self.rate


class ToolRule(_M):
    tool: str
    action: Literal["allow", "deny", "approve"]
    tier: RiskTier = RiskTier.HIGH
    category: Category | None = None
    allow_without_approval: bool = False
    arguments: Arguments | None = None
    rate_limit: RateLimit | None = None

    @field_validator("tool")
    @classmethod
    def _tool(cls, v: str) -> str:
        if not _GLOB_OK.fullmatch(v):
            raise _bad(
                f"tool pattern {v!r} is not a tool name or glob",
                "use letters, digits, _ . : / - and the glob characters * ? [ ]",
            )
        return v

    @model_validator(mode="after")
    def _action(self) -> ToolRule:
        if self.action == "deny" and (
            self.arguments or self.rate_limit or self.allow_without_approval
        ):
            raise _bad(
                "a deny rule is unconditional: arguments, rate_limit and "
                "allow_without_approval do not apply",
                "remove them, or make this an allow/approve rule with argument rules",
            )
        if self.action == "approve" and self.category is None:
            raise _bad(
                "an approve rule needs a category (it routes the approval)",
                f"add category: one of {', '.join(c.value for c in Category)}",
            )
        if self.action == "approve" and self.allow_without_approval:
            raise _bad("allow_without_approval contradicts action approve", "remove one of them")
        sensitive = self.tier.rank >= RiskTier.HIGH.rank
        uncategorised = self.category is None and not self.allow_without_approval
        if self.action == "allow" and sensitive and uncategorised:
            raise _bad(
                f"an allow rule at tier {self.tier.value} needs a category: an uncategorised "
                "high-risk tool is treated as sensitive",
                "add category: ... (the call then needs approval), set a lower tier, "
                "or set allow_without_approval: true",
            )
        return self


class ToolsPolicy(_M):
    default: Literal["deny"] = "deny"
    rules: tuple[ToolRule, ...] = ()
