"""The canonical, hardened-by-default description of one sandboxed run."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import Frozen


class Runtime(StrEnum):
    GVISOR = "gvisor"
    NAMESPACES = "namespaces"
    KUBERNETES = "kubernetes"


class NetworkProfile(Frozen):
    """``none``: loopback only in a fresh namespace. ``allowlist``: only a proxy to ``domains``."""

    mode: Literal["none", "allowlist"] = "none"
    domains: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _check(self) -> NetworkProfile:
        if self.mode == "none" and self.domains:
            raise ValueError("network mode 'none' cannot list domains")
        if self.mode == "allowlist" and not self.domains:
            raise ValueError("network mode 'allowlist' needs at least one domain")
        return self


class Bind(Frozen):
    """A host path made visible in the sandbox (read-only unless ``mode='rw'``)."""

    source: str = Field(min_length=1)
    target: str = Field(min_length=1)
    mode: Literal["ro", "rw"] = "ro"
    size_mb: int | None = Field(default=None, gt=0)

    @field_validator("source", "target")
    @classmethod
    def _absolute(cls, v: str) -> str:
        if not v.startswith("/"):
            raise ValueError(f"bind paths must be absolute, got {v!r}")
        return v


class SandboxSpec(Frozen):
    """Every field defaults to the safe value; backends refuse what they cannot apply."""

    argv: tuple[str, ...] = Field(min_length=1)
    cwd: str = "/"
    runtime: Runtime = Runtime.GVISOR
    image_digest: str | None = None
    rootfs: str | None = None
    binds: tuple[Bind, ...] = ()
    tmp_size_mb: int = Field(default=64, gt=0, le=4096)
    uid: int = Field(default=65532, gt=0)
    gid: int = Field(default=65532, gt=0)
    read_only_root: Literal[True] = True
    no_new_privs: Literal[True] = True
    capabilities: tuple[()] = ()
    seccomp: Literal["default"] = "default"
    cpu_seconds: float = Field(default=10, gt=0)
    memory_mb: int = Field(default=256, gt=0)
    pids: int = Field(default=64, gt=0)
    timeout_s: float = Field(default=60, gt=0)
    network: NetworkProfile = NetworkProfile()
    secrets: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
