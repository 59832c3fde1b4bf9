"""Build a :class:`SandboxSpec` from policy values plus command-line overrides that only tighten.

Pure: values in, a spec (or a :class:`SandboxError` naming the loosening) out.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from pydantic import ValidationError

from stockade.errors import SandboxError
from stockade.models import Bind, NetworkProfile, Runtime, SandboxSpec
from stockade.policy import Policy

from ._imagecfg import DEFAULT_ID, image_gid, image_uid
from ._imagecfg import image_env as filter_image_env

__all__ = ["Overrides", "PolicyLimits", "build_spec", "policy_limits"]


@dataclass(frozen=True)
class PolicyLimits:
    """What a policy entry (or the safe defaults, when there is no policy) grants a run.

    ``from_policy`` is False for an operator's ad-hoc job: its binds then come from the command
    line; with a policy, command-line binds must stay inside the policy's allowlist.
    """

    runtime: Runtime = Runtime.GVISOR
    kind: str = "job"
    cpu_seconds: float = 10
    memory_mb: int = 256
    pids: int = 64
    timeout_s: float = 60
    tmp_size_mb: int = 64
    network: NetworkProfile = field(default_factory=NetworkProfile)
    binds: tuple[Bind, ...] = ()
    secrets: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    from_policy: bool = False


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides. ``None`` means "keep the policy value"."""

    runtime: Runtime | None = None
    cpu_seconds: float | None = None
    memory_mb: int | None = None
    pids: int | None = None
    timeout_s: float | None = None
    tmp_size_mb: int | None = None
    network: NetworkProfile | None = None
    ro: tuple[str, ...] = ()
    rw: tuple[str, ...] = ()
    cwd: str = "/"


def _tighter(name: str, base: float, value: float | None) -> float:
    if value is None:
        return base
    if value > base:
        raise SandboxError(
            f"override {name}={value:g} loosens the policy limit (got {value:g}, expected <= "
            f"{base:g})",
            f"lower --{name.replace('_', '-')} or raise the limit in the policy file",
        )
    return value


def _network(base: NetworkProfile, value: NetworkProfile | None) -> NetworkProfile:
    if value is None or value == base:
        return base
    if value.mode == "none":
        return value
    if base.mode == "none":
        raise SandboxError(
            "override network=allowlist loosens the policy network profile (got allowlist, "
            "expected none)",
            "grant the domains in the policy file",
        )
    extra = sorted(set(value.domains) - set(base.domains))
    if extra:
        raise SandboxError(
            f"override adds domains the policy does not list: {', '.join(extra)}",
            "add them to the policy's egress domains, or drop --allow-domain",
        )
    return value


def _normal(path: str) -> str:
    if not path.startswith("/"):
        raise SandboxError(f"bind path must be absolute, got {path!r}", "pass an absolute path")
    norm = posixpath.normpath(path)
    return "/" + norm.lstrip("/") if norm != "/" else "/"


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _binds(limits: PolicyLimits, ro: tuple[str, ...], rw: tuple[str, ...]) -> tuple[Bind, ...]:
    asked = [(p, "ro") for p in ro] + [(p, "rw") for p in rw]
    if not limits.from_policy:
        out = list(limits.binds)
        for p, mode in asked:
            n = _normal(p)
            out.append(Bind(source=n, target=n, mode="rw" if mode == "rw" else "ro"))
        return tuple(out)
    if not asked:
        return limits.binds
    out = []
    for p, mode in asked:
        n = _normal(p)
        grant = next((b for b in limits.binds if _within(n, b.source)), None)
        if grant is None:
            raise SandboxError(
                f"bind {n!r} is outside the policy's filesystem allowlist",
                "add the path to the policy's fs_allowlist, or drop the option",
            )
        if mode == "rw" and grant.mode != "rw":
            raise SandboxError(
                f"bind {n!r} asked read-write but the policy grants it read-only",
                "use --ro, or grant rw in the policy",
            )
        target = (
            grant.target + n[len(grant.source.rstrip("/")) :]
            if n != grant.source
            else (grant.target)
        )
        out.append(Bind(source=n, target=target, mode="rw" if mode == "rw" else "ro"))
    return tuple(out)


def build_spec(
    argv: tuple[str, ...],
    limits: PolicyLimits,
    overrides: Overrides,
    *,
    image_digest: str | None = None,
    rootfs: str | None = None,
    image_env: tuple[str, ...] = (),
    image_user: str = "",
) -> SandboxSpec:
    """The spec for ``argv``: policy limits, tightened by ``overrides``; loosening is an error.

    ``image_digest`` and ``rootfs`` describe a verified, unpacked image (run on gVisor only);
    ``image_env`` and ``image_user`` are its config's ``Env`` and ``User``, taken only through
    the filters of :mod:`._imagecfg` (the policy's env wins over the image's; a root or named
    user refuses).
    """
    if not argv:
        raise SandboxError("no command to run (got an empty argv)", "pass: stockade run -- CMD")
    runtime = limits.runtime
    if overrides.runtime is not None and overrides.runtime != limits.runtime:
        if overrides.runtime == Runtime.NAMESPACES and limits.kind != "job":
            raise SandboxError(
                f"runtime namespaces was asked for a {limits.kind}; servers and images must "
                "run under gvisor",
                "drop --runtime namespaces",
            )
        runtime = overrides.runtime
    env, uid, gid = limits.env, DEFAULT_ID, DEFAULT_ID
    if rootfs is not None:
        env = tuple(sorted({**dict(filter_image_env(list(image_env))), **dict(limits.env)}.items()))
        uid, gid = image_uid(image_user, None), image_gid(image_user)
    try:
        return SandboxSpec(
            argv=argv,
            uid=uid,
            gid=gid,
            cwd=overrides.cwd,
            runtime=runtime,
            image_digest=image_digest,
            rootfs=rootfs,
            binds=_binds(limits, overrides.ro, overrides.rw),
            tmp_size_mb=int(_tighter("tmp_size_mb", limits.tmp_size_mb, overrides.tmp_size_mb)),
            cpu_seconds=_tighter("cpu_seconds", limits.cpu_seconds, overrides.cpu_seconds),
            memory_mb=int(_tighter("memory_mb", limits.memory_mb, overrides.memory_mb)),
            pids=int(_tighter("pids", limits.pids, overrides.pids)),
            timeout_s=_tighter("timeout_s", limits.timeout_s, overrides.timeout_s),
            network=_network(limits.network, overrides.network),
            secrets=limits.secrets,
            env=env,
        )
    except ValidationError as e:
        raise SandboxError(
            f"the sandbox spec is invalid: {e.errors()[0]['msg']}", "check the limits given"
        ) from None


def policy_limits(policy: Policy, server: str, *, kind: str | None = None) -> PolicyLimits:
    """The limits a policy's server entry grants (its fs_allowlist as resolved on this host)."""
    entry = policy.server(server)
    binds = tuple(m.bind(m.source) for m in policy.mounts_for(server))
    return PolicyLimits(
        runtime=Runtime(entry.runtime),
        kind=kind or entry.kind,
        cpu_seconds=entry.cpu_seconds,
        memory_mb=entry.memory_mb,
        pids=entry.pids,
        timeout_s=entry.timeout_s,
        tmp_size_mb=entry.tmp_size_mb,
        network=entry.network.profile,
        binds=binds,
        secrets=entry.secrets,
        env=tuple(sorted(entry.env.items())),
        from_policy=True,
    )
