"""The version-1 policy schema: frozen, strict pydantic models whose defaults are the safe ones.

These models are the *effective* policy: the loader normalises shorthands and version-0 files into
this shape before validation, so two files that mean the same thing validate to equal models.
Validators raise ``ValueError("what\\nfix: how")``; the loader splits the two parts.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Literal

from pydantic import (
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from stockade.models import Category, NetworkProfile
from stockade.secrets import SECRET_NAME_PATTERN

from ._base import StrictModel as _M
from ._base import bad as _bad
from ._opa import OpaPolicy
from ._patterns import (
    image_repository,
    registry_matches,
    validate_domain_pattern,
    validate_registry_pattern,
)
from ._signatures import ProvenanceSpec, SignaturesPolicy
from ._tools import ToolsPolicy

__all__ = [
    "LIMITS",
    "Approvals",
    "CategoryApproval",
    "ClientRule",
    "FsEntry",
    "KubernetesPolicy",
    "NetworkSpec",
    "PolicyDoc",
    "ServerPolicy",
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


class ResourcesPolicy(_M):
    #: A raw resource uri no server offered: ``refuse`` (default) or ``route`` it to this server
    #: when it is the only server granted to the client that opts in (audited, read policy applies).
    unlisted_uris: Literal["refuse", "route"] = "refuse"


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
    resources: ResourcesPolicy = ResourcesPolicy()
    verify: tuple[str, ...] = ()
    #: SLSA provenance this server's image must carry (applies to its verify: rules without one).
    provenance: ProvenanceSpec | None = None
    #: Booted single-use gVisor sandboxes kept ready for this server (0: cold starts only).
    warm_pool: int = Field(default=0, ge=0, le=64)

    @model_serializer(mode="wrap")
    def _dump_server(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        out = handler(self)
        if isinstance(out, dict) and out.get("provenance") is None:
            out.pop("provenance", None)  # no provenance: the effective hash is as it was
        if isinstance(out, dict) and out.get("resources") == {"unlisted_uris": "refuse"}:
            out.pop("resources", None)  # the default: the effective hash is as it was
        return out

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
    #: MCP elicitation modes that may ask the agent's client about this category (none by
    #: default). Form answers never approve exfiltration, credentials, financial or
    #: permission_grant actions whatever is listed here; URL mode only points at the approval page.
    elicitation: tuple[Literal["form", "url"], ...] = ()

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        out = handler(self)
        if isinstance(out, dict) and not out.get("elicitation"):
            out.pop("elicitation", None)  # absent leaves the effective hash as it was
        return out


class Approvals(_M):
    """How long a human has to answer; on timeout the answer is always deny."""

    timeout_s: float = Field(default=300, gt=0, le=86400)
    categories: dict[Category, CategoryApproval] = Field(default_factory=dict)

    def timeout_for(self, category: Category) -> float:
        c = self.categories.get(category)
        return c.timeout_s if c is not None else self.timeout_s

    def elicitation_for(self, category: Category) -> frozenset[Literal["form", "url"]]:
        c = self.categories.get(category)
        return frozenset(c.elicitation) if c is not None else frozenset()


class ClientRule(_M):
    name: str
    servers: tuple[str, ...]

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise _bad(f"client name {v!r} is not valid", "use letters, digits, '_', '.', '-'")
        return v


class KubernetesPolicy(_M):
    """Settings of the Kubernetes backend (docs/kubernetes.md); none is needed to run locally."""

    #: stockade's own image the cluster egress proxy Deployment runs (allowlist servers): pinned
    #: by digest, from a registry the policy lists (checked across the file in ``cross_checks``).
    egress_proxy_image: str | None = None

    @field_validator("egress_proxy_image")
    @classmethod
    def _proxy_image(cls, v: str | None) -> str | None:
        if v is None:
            return v
        try:
            _, _, digest = image_repository(v)
        except ValueError as e:
            raise _bad(str(e), "write REGISTRY/REPO@sha256:<digest> (stockade's image)") from e
        if digest is None:
            raise _bad(
                f"kubernetes.egress_proxy_image {v[:200]!r} is not pinned by digest",
                "write REGISTRY/REPO@sha256:<digest> (a tag can be moved)",
            )
        return v


class PolicyDoc(_M):
    version: Literal[1] = 1
    default: Literal["deny"]
    registries: tuple[str, ...] = ()
    secret_store: str | None = None
    approvals: Approvals = Approvals()
    clients: tuple[ClientRule, ...] | None = None
    servers: tuple[ServerPolicy, ...] = ()
    signatures: SignaturesPolicy = SignaturesPolicy()
    opa: OpaPolicy | None = None
    kubernetes: KubernetesPolicy | None = None

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        out = handler(self)
        if isinstance(out, dict) and out.get("opa") is None:
            out.pop("opa", None)  # no opa: section leaves the effective hash as it was
        if isinstance(out, dict) and out.get("kubernetes") is None:
            out.pop("kubernetes", None)  # likewise without a kubernetes: section
        return out

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
        for k, rule in enumerate(s.verify):
            if doc.signatures.rule(rule) is None:
                out.append(
                    (
                        ("servers", i, "verify", k),
                        f"server {s.name!r} names unknown signature rule {rule!r}",
                        "define it under signatures.rules, or correct the name",
                    )
                )
        if s.provenance is not None and not s.verify:
            out.append(
                (
                    ("servers", i, "provenance"),
                    f"server {s.name!r} has provenance: but no verify: rule to sign it",
                    "name the signature rule whose signer signs the provenance under verify:",
                )
            )
        if s.verify and s.image is None:
            out.append(
                (
                    ("servers", i, "verify"),
                    f"server {s.name!r} has verify: but no image",
                    "remove verify:, or give the server an image",
                )
            )
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
    proxy = doc.kubernetes.egress_proxy_image if doc.kubernetes is not None else None
    if proxy is not None:
        repo = image_repository(proxy)[0]
        if not any(registry_matches(p, repo) for p in doc.registries):
            out.append(
                (
                    ("kubernetes", "egress_proxy_image"),
                    f"egress proxy image {proxy[:200]!r} is not in the registries allowlist",
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
