"""A policy's image servers as the gateway's servers when they run as Pods.

The local gateway loader serves command servers only (a host process in a local sandbox); on
Kubernetes it is the other way round: every server must have an ``image:`` (the Pod runs it), a
command server is refused by name. Limits, secrets, decisions and sinks come from the same
policy entry, and the pins bind to the verified image reference (a new digest is a new package,
so its tools are reviewed again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from pydantic import ValidationError

from ._errors import KubeError

if TYPE_CHECKING:
    from stockade.gateway import LoadedPolicy
    from stockade.policy import Policy

__all__ = ["gateway_policy", "image_servers"]


def image_servers(policy: Policy) -> tuple[str, ...]:
    """The servers the gateway runs as Pods; refuses a policy with a command server or none."""
    hosts = [s.name for s in policy.servers if s.image is None]
    if hosts:
        raise KubeError(
            f"server(s) {', '.join(hosts)} run a host command; on Kubernetes every gateway "
            "server runs an image as a Pod",
            "give each server an image: pinned by digest, or serve command servers with "
            "--backend local (a separate gateway)",
        )
    if not policy.servers:
        raise KubeError("the policy has no servers", "add the image servers to run")
    return tuple(s.name for s in policy.servers)


def gateway_policy(policy: Policy, references: Mapping[str, str]) -> LoadedPolicy:
    """The gateway configuration of ``policy``'s image servers; ``references`` maps each server
    to its verified image reference (``registry/repo@sha256:...``), which its pins bind to."""
    from stockade.gateway import GatewayConfig, LoadedPolicy, ServerSandbox, ServerSpec
    from stockade.sandbox import policy_limits

    servers = []
    for name in image_servers(policy):
        if name not in references:
            raise KubeError(
                f"server {name!r} has no verified image", "verify every image before serving"
            )
        entry, limits = policy.server(name), policy_limits(policy, name, kind="server")
        try:
            spec = ServerSpec(
                name=name,
                command=(references[name],),  # what the Pod runs; never executed on this host
                package=references[name],
                tofu=entry.tofu,
                start=entry.start,
                sandbox=ServerSandbox(
                    memory_mb=limits.memory_mb,
                    cpu_seconds=limits.cpu_seconds,
                    pids=limits.pids,
                    timeout_s=limits.timeout_s,
                    secrets=limits.secrets,
                ),
            )
        except ValidationError as e:
            raise KubeError(
                f"server {name!r} cannot be served by the gateway: {e.errors()[0]['msg']}",
                "check its name (lowercase letters, digits, single hyphens) and its limits",
            ) from None
        servers.append(spec)
    cfg = GatewayConfig(
        servers=tuple(servers),
        approval_timeout_s=policy.doc.approvals.timeout_s,
        clients=tuple(c.name for c in policy.doc.clients) if policy.doc.clients else ("stdio",),
        pins_dir="pins",
    )
    return LoadedPolicy.derive(policy, cfg)  # the sinks as the local loader derives them
