"""Gateway configuration: the MCP servers to aggregate and the gateway's own limits.

Read from the ``gateway:`` section of a policy file (YAML). Unknown keys are errors; every default
is the safe one (no TOFU, default deny, small messages, short timeouts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from stockade.models import Bind, Category, Frozen, NetworkProfile

from ._errors import ConfigError

__all__ = [
    "GatewayConfig",
    "ServerImage",
    "ServerSandbox",
    "ServerSpec",
    "ToolRule",
    "has_gateway_section",
    "load_gateway_config",
    "package_identity",
]


class ToolRule(Frozen):
    """Per-tool rule: ``allow``, ``deny`` or ``require_approval``; optional sink arguments."""

    action: Literal["allow", "deny", "require_approval"] = "deny"
    category: Category = Category.EXFILTRATION
    sensitive_args: tuple[str, ...] = ()
    when_tainted: Literal["deny", "require_approval"] = "require_approval"


class ServerSandbox(Frozen):
    """Limits for a sandboxed server (long-lived, so larger budgets than a job; still bounded)."""

    runtime: Literal["gvisor"] = "gvisor"
    binds: tuple[Bind, ...] = ()
    memory_mb: int = Field(default=512, gt=0, le=16384)
    cpu_seconds: float = Field(default=3600, gt=0)
    pids: int = Field(default=128, gt=0, le=4096)
    timeout_s: float = Field(default=86400, gt=0)
    secrets: tuple[str, ...] = Field(default=(), description="secret names delivered as files")
    network: NetworkProfile = Field(
        default_factory=NetworkProfile,
        description="none, or an allowlist served by the run's own egress proxy",
    )


class ServerImage(Frozen):
    """An image server's image as this gateway verified it before serving.

    ``rootfs`` is empty until the supply-chain gate passed in this process (a policy loaded only
    to review pins): such a server is never launched. ``env`` and ``user`` are the image config's
    requests, filtered by the sandbox's spec builder; ``evidence`` is recorded with every run.
    """

    requested: str = Field(min_length=1)
    reference: str = Field(min_length=1, description="name@sha256:... as verified (pins bind)")
    digest: str = ""
    rootfs: str = ""
    workdir: str = "/"
    env: tuple[str, ...] = ()
    user: str = ""
    evidence: tuple[tuple[str, dict[str, Any]], ...] = ()


class ServerSpec(Frozen):
    """One downstream server, launched over stdio."""

    name: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?$")
    command: tuple[str, ...] = Field(min_length=1)
    env: dict[str, str] = Field(default_factory=dict)
    cwd: str | None = None
    package: str = Field(default="", description="image digest or package identity pins bind to")
    package_tree: str | None = Field(default=None, description="directory hashed into the identity")
    tofu: bool = Field(default=False, description="trust-on-first-use for NEW tools only")
    tools: dict[str, ToolRule] = Field(default_factory=dict)
    call_timeout_s: float = Field(default=30.0, gt=0, le=3600)
    sandbox: ServerSandbox = Field(default_factory=ServerSandbox)
    image: ServerImage | None = Field(default=None, description="set for an image server")
    start: Literal["eager", "lazy"] = "eager"
    idle_stop_s: float | None = Field(default=None, gt=0, description="stop after idle seconds")
    unlisted_uris: Literal["refuse", "route"] = Field(
        default="refuse",
        description="route a raw resource uri that no server offered to this server when it is "
        "the only opted-in server whose policy could allow the read for the client (audited)",
    )

    @field_validator("env")
    @classmethod
    def _no_secrets_inline(cls, v: dict[str, str]) -> dict[str, str]:
        for k in v:
            if any(s in k.upper() for s in ("TOKEN", "SECRET", "PASSWORD", "API_KEY", "APIKEY")):
                raise ValueError(
                    f"env {k!r} looks like a credential: grant it from the secret store"
                )
        return v


class GatewayConfig(Frozen):
    servers: tuple[ServerSpec, ...] = ()
    default: Literal["deny"] = "deny"
    pins_dir: str = "pins"
    max_message_bytes: int = Field(default=4 * 1024 * 1024, gt=1024, le=64 * 1024 * 1024)
    max_result_chars: int = Field(default=65536, gt=0)
    rate_per_minute: int = Field(default=120, gt=0)
    rate_burst: int = Field(default=30, gt=0)
    approval_timeout_s: float = Field(default=60.0, gt=0)
    clients: tuple[str, ...] = ("stdio",)


def load_gateway_config(path: Path) -> tuple[GatewayConfig, Path]:
    """Parse the ``gateway:`` section; returns the config and the resolved pins directory."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(
            f"cannot read policy {path}: {e.strerror}", "check the --policy path"
        ) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"policy {path} is not valid YAML: {e}", "fix the YAML syntax") from e
    if not isinstance(raw, dict) or not isinstance(raw.get("gateway"), dict):
        raise ConfigError(
            f"policy {path} has no 'gateway:' mapping", "add a gateway section listing servers"
        )
    try:
        cfg = GatewayConfig.model_validate(raw["gateway"])
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()[:5]
        )
        raise ConfigError(
            f"policy {path}: invalid gateway section: {problems}", "see docs/gateway.md"
        ) from e
    imaged = [s.name for s in cfg.servers if s.image is not None]
    if imaged:
        raise ConfigError(
            f"policy {path}: gateway section server(s) {', '.join(imaged)} name an image; only a "
            "stockade policy serves image servers (it carries the registries and signature rules)",
            "move the servers into a stockade policy's servers: with image: and verify:",
        )
    names = [s.name for s in cfg.servers]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"policy {path}: server names repeat: {names}", "give each server a unique name"
        )
    pins = Path(cfg.pins_dir)
    if not pins.is_absolute():
        pins = path.parent / pins
    return cfg, pins


def package_identity(spec: ServerSpec) -> str:
    """What a server's pins bind to: ``package`` and, when given, the hash of ``package_tree``."""
    from ._tree import package_tree_hash

    if spec.package_tree is None:
        return spec.package
    tree = package_tree_hash(Path(spec.package_tree))
    return f"{spec.package}+{tree}" if spec.package else tree


def has_gateway_section(path: Path) -> bool:
    """Whether ``path`` is in the stand-alone gateway format (a top-level ``gateway:`` key)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError(
            f"cannot read policy {path}: {e.strerror}", "check the --policy path"
        ) from e
    except yaml.YAMLError as e:
        raise ConfigError(f"policy {path} is not valid YAML: {e}", "fix the YAML syntax") from e
    return isinstance(raw, dict) and "gateway" in raw
