"""The version-1 policy schema: frozen, strict pydantic models whose defaults are the safe ones.

These models are the *effective* policy: the loader normalises shorthands and version-0 files into
this shape before validation, so two files that mean the same thing validate to equal models.
Validators raise ``ValueError("what\\nfix: how")``; the loader splits the two parts.
"""

from __future__ import annotations

import functools
import json
import posixpath
import re
from typing import Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from stockade.models import Category, NetworkProfile, RiskTier
from stockade.secrets import SECRET_NAME_PATTERN

from ._patterns import (
    image_repository,
    registry_matches,
    validate_domain_pattern,
    validate_registry_pattern,
)

__all__ = [
    "LIMITS",
    "Approvals",
    "ArgumentRule",
    "Arguments",
    "CategoryApproval",
    "ClientRule",
    "FsEntry",
    "NetworkSpec",
    "PolicyDoc",
    "RateLimit",
    "ServerPolicy",
    "ToolRule",
    "ToolsPolicy",
    "cross_checks",
]

#: field -> (safe default, hard maximum). Documented in docs/policy.md.
LIMITS: dict[str, tuple[float, float]] = {
    "cpu_seconds": (10, 3600),
    "memory_mb": (256, 65536),
    "pids": (64, 4096),
    "timeout_s": (60, 86400),
    "tmp_size_mb": (64, 4096),
}

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
_NAME = re.compile(NAME_PATTERN)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_CREDENTIAL_ENV = re.compile(
    r"(TOKEN|_KEY$|^KEY$|KEY_|APIKEY|PASSWORD|PASSWD|PASSPHRASE|SECRET|CREDENTIAL|PRIVATE|"
    r"^AUTH|_AUTH$|SESSION|COOKIE)",
    re.IGNORECASE,
)
# Values that look like live credentials even under an innocent-looking name.
_CREDENTIAL_VALUE = re.compile(
    r"(ghp_|gho_|ghs_|github_pat_|glpat-|xox[abpr]-|sk-[A-Za-z0-9]|AKIA[0-9A-Z]{12}|"
    r"-----BEGIN [A-Z ]*PRIVATE KEY)"
)
_GLOB_OK = re.compile(r"[A-Za-z0-9_.:/*?\[\]!-]{1,200}")
_NESTED_QUANTIFIER = re.compile(r"\((?:[^()\\]|\\.)*[+*](?:[^()\\]|\\.)*\)\s*[+*{]")


def _bad(what: str, fix: str) -> ValueError:
    return ValueError(f"{what}\nfix: {fix}")


class _M(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


# -- tools ---------------------------------------------------------------------------------------


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


# -- servers -------------------------------------------------------------------------------------


class FsEntry(_M):
    """A host path (relative to the policy's directory) mounted nosuid,nodev; ``ro`` unless rw."""

    path: str
    mode: Literal["ro", "rw"] = "ro"

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        if not v or not v.isprintable() or "\\" in v:
            raise _bad(
                f"fs_allowlist path {v!r} is empty or has control characters",
                "write a relative path such as data/",
            )
        norm = posixpath.normpath(v)
        return "/" + norm.lstrip("/") if norm.startswith("/") else norm


class NetworkSpec(_M):
    """``none``: loopback only. ``allowlist``: egress only to ``domains`` (through the proxy)."""

    mode: Literal["none", "allowlist"] = "none"
    domains: tuple[str, ...] = ()

    @field_validator("domains")
    @classmethod
    def _domains(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        good: set[str] = set()
        bad: list[str] = []
        for d in v:
            try:
                good.add(validate_domain_pattern(d))
            except ValueError as e:
                bad.append(str(e))
        if bad:
            raise _bad("; ".join(bad), "use api.example.com or *.example.com")
        return tuple(sorted(good))

    @model_validator(mode="after")
    def _consistent(self) -> NetworkSpec:
        if self.mode == "none" and self.domains:
            raise _bad("network mode none cannot list domains", "remove the domains")
        if self.mode == "allowlist" and not self.domains:
            raise _bad("an empty domain allowlist", "write network: none instead")
        return self

    @property
    def profile(self) -> NetworkProfile:
        return NetworkProfile(mode=self.mode, domains=self.domains)


class ServerPolicy(_M):
    name: str
    kind: Literal["server", "plugin"] = "server"
    image: str | None = None
    command: tuple[str, ...] | None = None
    runtime: Literal["gvisor", "namespaces"] = "gvisor"
    network: NetworkSpec = NetworkSpec()
    fs_allowlist: tuple[FsEntry, ...] = ()
    cpu_seconds: float = Field(default=LIMITS["cpu_seconds"][0], gt=0, le=3600)
    memory_mb: int = Field(default=256, ge=16, le=65536)
    pids: int = Field(default=64, ge=1, le=4096)
    timeout_s: float = Field(default=LIMITS["timeout_s"][0], gt=0, le=86400)
    tmp_size_mb: int = Field(default=64, ge=1, le=4096)
    secrets: tuple[str, ...] = ()
    env: dict[str, str] = Field(default_factory=dict)
    start: Literal["lazy", "eager"] = "lazy"
    tofu: bool = False
    tools: ToolsPolicy = ToolsPolicy()

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise _bad(
                f"name {v!r} is not valid",
                "use 1-63 letters, digits, '_', '.', '-' starting with a letter or digit",
            )
        return v

    @field_validator("image")
    @classmethod
    def _image(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            image_repository(v)
        except ValueError as e:
            raise _bad(str(e), "write registry.example.com/team/name:tag or @sha256:...") from e
        return v

    @field_validator("command")
    @classmethod
    def _command(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is None:
            return v
        if not v or len(v) > 256:
            raise _bad("command must list 1 to 256 arguments", 'write ["node", "server.js"]')
        for arg in v:
            if not arg or "\x00" in arg or len(arg) > 4096:
                raise _bad(
                    "command arguments must be non-empty, without NUL, at most 4096 characters",
                    "correct the argument",
                )
        return v

    @field_validator("secrets")
    @classmethod
    def _secrets(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        for name in v:
            if not re.fullmatch(SECRET_NAME_PATTERN, name) or ".." in name:
                raise _bad(
                    f"secret name {name[:40]!r} is not a secret-store name",
                    "list names only (e.g. GITHUB_TOKEN); values live in the secret store",
                )
        if len(set(v)) != len(v):
            raise _bad("a secret is listed twice", "list each secret once")
        return tuple(sorted(v))

    @field_validator("env")
    @classmethod
    def _env(cls, v: dict[str, str]) -> dict[str, str]:
        for key, value in v.items():
            if not _ENV_NAME.fullmatch(key):
                raise _bad(f"env name {key[:40]!r} is not valid", "use [A-Za-z_][A-Za-z0-9_]*")
            if _CREDENTIAL_ENV.search(key):
                raise _bad(
                    f"env {key!r} looks like a credential; env holds only non-secret literals",
                    f"put the value in the secret store and list {key} under secrets:",
                )
            if _CREDENTIAL_VALUE.search(value):
                raise _bad(
                    f"the value of env {key!r} looks like a live credential",
                    "move it into the secret store and list its name under secrets:",
                )
            if "\x00" in value or len(value) > 32768:
                raise _bad(f"env {key!r} has NUL or is over 32768 characters", "shorten it")
        return v

    @model_validator(mode="after")
    def _launch(self) -> ServerPolicy:
        has = (self.image is not None) + (self.command is not None)
        if self.kind == "server" and has != 1:
            raise _bad(
                f"server {self.name!r} needs exactly one of image or command (has {has})",
                "give image: registry/..., or command: [argv...]",
            )
        if self.kind == "plugin" and has:
            raise _bad(
                f"plugin {self.name!r} cannot have image or command (the caller supplies it)",
                "remove image/command, or use kind: server",
            )
        return self

    @property
    def mandatory_keys(self) -> tuple[str, ...]:
        return ("name",) if self.kind == "plugin" else ("name", "image|command")


# -- top level -----------------------------------------------------------------------------------


class CategoryApproval(_M):
    timeout_s: float = Field(gt=0, le=86400)


class Approvals(_M):
    """How long a human has to answer; on timeout the answer is always deny."""

    timeout_s: float = Field(default=300, gt=0, le=86400)
    categories: dict[Category, CategoryApproval] = Field(default_factory=dict)

    def timeout_for(self, category: Category) -> float:
        c = self.categories.get(category)
        return c.timeout_s if c is not None else self.timeout_s


class ClientRule(_M):
    name: str
    servers: tuple[str, ...]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise _bad(f"client name {v!r} is not valid", "use letters, digits, '_', '.', '-'")
        return v


class PolicyDoc(_M):
    version: Literal[1] = 1
    default: Literal["deny"]
    registries: tuple[str, ...] = ()
    secret_store: str | None = None
    approvals: Approvals = Approvals()
    clients: tuple[ClientRule, ...] | None = None
    servers: tuple[ServerPolicy, ...] = ()

    @field_validator("registries")
    @classmethod
    def _registries(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        try:
            return tuple(validate_registry_pattern(p) for p in v)
        except ValueError as e:
            raise _bad(str(e), "write registry.example.com/team/* or an exact repository") from e

    @field_validator("secret_store")
    @classmethod
    def _store(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if not v or not v.isprintable():
            raise _bad("secret_store must be a directory path", "write secret_store: secrets/")
        norm = posixpath.normpath(v)
        return "/" + norm.lstrip("/") if norm.startswith("/") else norm


def cross_checks(doc: PolicyDoc) -> list[tuple[tuple[str | int, ...], str, str]]:
    """Checks across entries, each as (path, what, fix): unique names, registries, clients."""
    out: list[tuple[tuple[str | int, ...], str, str]] = []
    seen: set[str] = set()
    for i, s in enumerate(doc.servers):
        if s.name in seen:
            out.append(
                (
                    ("servers", i, "name"),
                    f"server name {s.name!r} is used twice",
                    "give each entry its own name",
                )
            )
        seen.add(s.name)
        if s.image is not None:
            repo = image_repository(s.image)[0]
            if not any(registry_matches(p, repo) for p in doc.registries):
                out.append(
                    (
                        ("servers", i, "image"),
                        f"image {s.image!r} is not in the registries allowlist",
                        f"add a pattern covering {repo} to registries:, or use another image",
                    )
                )
    if doc.clients is not None:
        cseen: set[str] = set()
        for j, c in enumerate(doc.clients):
            if c.name in cseen:
                out.append(
                    (
                        ("clients", j, "name"),
                        f"client {c.name!r} is listed twice",
                        "merge the entries",
                    )
                )
            cseen.add(c.name)
            unknown = [x for x in c.servers if x not in seen]
            if unknown:
                out.append(
                    (
                        ("clients", j, "servers"),
                        f"client {c.name!r} names unknown servers {unknown}",
                        "list only servers defined under servers:",
                    )
                )
    return out
