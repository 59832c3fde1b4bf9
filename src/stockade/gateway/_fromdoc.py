"""Wiring to the real policy: servers, sandbox limits and decisions from a ``stockade`` policy.

A policy file without a ``gateway:`` section is loaded with :func:`stockade.policy.load_policy`;
each server becomes a :class:`ServerSpec` (a command server, or an image server whose image the
caller's ``verify`` passed through the supply-chain gate), its sandbox limits and network profile
come from :func:`stockade.sandbox.policy_limits`, and calls are decided by the policy engine. Tools
whose rule carries a sensitive category are information-flow sinks: in a tainted context every
string argument must come from the trusted instruction.
"""

from __future__ import annotations

from collections.abc import Callable
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from stockade.models import Bind, Category, Clock, Decision, ToolCall

from ._config import GatewayConfig, ServerImage, ServerSandbox, ServerSpec
from ._errors import ConfigError, NamespaceError
from ._interceptors import DecisionContext, SinkRule
from ._names import qualify

__all__ = ["EngineDecider", "ImageVerifier", "LoadedPolicy", "load_any", "load_policy_for_gateway"]

#: ``(policy, server) -> (image, argv)``: the supply-chain gate for one image server (raises, and
#: records the refusal, when the image does not pass); ``argv`` is what runs in its rootfs.
ImageVerifier = Callable[[Any, str], tuple[ServerImage, tuple[str, ...]]]

_SINK_CATEGORIES = {
    Category.EXFILTRATION,
    Category.CREDENTIALS,
    Category.FINANCIAL,
    Category.PERMISSION_GRANT,
    Category.CONFIG_CHANGE,
}


class EngineDecider:
    """The policy engine as a :class:`PolicyDecider`; keeps the engine's rate state.

    Probes (tools/list filtering) never consume rate-limit tokens.
    """

    def __init__(self, policy: Any, clock: Clock) -> None:
        from stockade.policy import DecisionContext as EngineContext

        self._policy = policy
        self._clock = clock
        self._ctx = EngineContext(now=clock.now().timestamp())

    def __call__(self, call: ToolCall, context: DecisionContext) -> Decision:
        from stockade.policy import DecisionContext as EngineContext
        from stockade.policy import decide

        now = EngineContext(now=self._clock.now().timestamp(), rate=self._ctx.rate)
        decision, after = decide(self._policy, call, now)
        if not context.probe:
            self._ctx = after
        return decision

    def listable(self, client: str, server: str, tool: str) -> bool:
        """Listing: the server is known and granted to the client, some rule matches the tool,
        and no matching rule denies it (argument checks and rate limits apply per call)."""
        doc = self._policy.doc
        if not self._policy.has_server(server):
            return False
        if doc.clients is not None and not any(
            c.name == client and server in c.servers for c in doc.clients
        ):
            return False
        rules = [r for r in self._policy.server(server).tools.rules if fnmatchcase(tool, r.tool)]
        return bool(rules) and all(r.action != "deny" for r in rules)


class LoadedPolicy:
    def __init__(
        self, policy: Any, config: GatewayConfig, sinks: dict[tuple[str, str], SinkRule]
    ) -> None:
        self.policy = policy
        self.config = config
        self.sinks = sinks

    @classmethod
    def derive(cls, policy: Any, config: GatewayConfig) -> LoadedPolicy:
        """``config`` served under ``policy``, with the sinks the policy's tool rules imply (what
        the local loader and the Kubernetes backend both use)."""
        return cls(policy, config, policy_sinks(policy))

    @property
    def hash(self) -> str:
        return str(self.policy.effective_hash)


def policy_sinks(policy: Any) -> dict[tuple[str, str], SinkRule]:
    """Information-flow sinks: each exact tool (no glob) whose rule carries a sensitive category
    and does not deny it; in a tainted context every string argument must come from the trusted
    instruction, else a human approves."""
    sinks: dict[tuple[str, str], SinkRule] = {}
    for entry in policy.servers:
        for rule in entry.tools.rules:
            if rule.category not in _SINK_CATEGORIES or rule.action == "deny":
                continue
            if any(c in rule.tool for c in "*?["):
                continue
            sinks[(entry.name, rule.tool)] = SinkRule(
                server=entry.name,
                tool=rule.tool,
                sensitive=("*",),
                category=rule.category,
                when_tainted="require_approval",
            )
    return sinks


def load_policy_for_gateway(path: Path, verify: ImageVerifier | None = None) -> LoadedPolicy:
    """Load a real policy and derive the gateway configuration from its servers.

    Each image server goes through ``verify`` (the supply-chain gate) here, before anything is
    served. Without ``verify`` (pins review) an image server is described by its reference only
    and is never launched.
    """
    from stockade.policy import load_policy
    from stockade.sandbox import policy_limits

    policy = load_policy(path)
    servers: list[ServerSpec] = []
    for entry in policy.servers:
        try:
            qualify(entry.name, "x")
        except NamespaceError as e:
            raise ConfigError(
                f"server name {entry.name!r} cannot be namespaced for the gateway",
                "use lowercase letters, digits and single hyphens",
            ) from e
        limits = policy_limits(policy, entry.name, kind="server")
        image: ServerImage | None = None
        tree: str | None = None
        granted = {b.target for b in limits.binds}
        if entry.image is not None:
            if verify is not None:
                image, command = verify(policy, entry.name)
            else:
                image, command = _unverified(entry.image), tuple(entry.command or (entry.image,))
            code_binds: tuple[Bind, ...] = ()
        else:
            assert entry.command is not None  # noqa: S101 (the schema: an image or a command)
            command, code_binds, tree = _code_paths(tuple(entry.command), path.parent)
            code_binds = tuple(b for b in code_binds if b.target not in granted)
        servers.append(
            ServerSpec(
                name=entry.name,
                command=command,
                env=dict(entry.env),
                package="" if image is None else image.reference,
                tofu=entry.tofu,
                package_tree=tree,
                image=image,
                start=entry.start,
                unlisted_uris=entry.resources.unlisted_uris,
                sandbox=ServerSandbox(
                    binds=(*limits.binds, *code_binds),
                    memory_mb=limits.memory_mb,
                    cpu_seconds=limits.cpu_seconds,
                    pids=limits.pids,
                    timeout_s=limits.timeout_s,
                    secrets=limits.secrets,
                    network=limits.network,
                ),
            )
        )
    cfg = GatewayConfig(
        servers=tuple(servers),
        approval_timeout_s=policy.doc.approvals.timeout_s,
        clients=tuple(c.name for c in policy.doc.clients) if policy.doc.clients else ("stdio",),
        pins_dir="pins",
    )
    return LoadedPolicy.derive(policy, cfg)


def _unverified(text: str) -> ServerImage:
    """An image server seen without its gate (``stockade tools``): the identity its pins bind to
    when the policy pins a digest (a verified digest reference resolves to itself), no rootfs."""
    from stockade.errors import StockadeError
    from stockade.supplychain import parse_reference

    try:
        ref = parse_reference(text)
    except StockadeError:
        return ServerImage(requested=text, reference=text)
    return ServerImage(requested=text, reference=str(ref) if ref.digest else text)


def _code_paths(
    command: tuple[str, ...], base: Path
) -> tuple[tuple[str, ...], tuple[Bind, ...], str | None]:
    """Make a command's relative code paths usable inside the sandbox.

    An argument naming an existing path relative to the policy's directory (``server/index.js``,
    ``node_modules/pkg/dist/index.js``) becomes absolute, and the top directory holding it is bound
    read-only at the same path. That directory is also the package tree the pins bind to. Paths
    that resolve outside the policy's directory (symlinks, ``..``) are refused.
    """
    root = base.resolve()
    out: list[str] = []
    binds: dict[str, Bind] = {}
    tree: str | None = None
    for i, arg in enumerate(command):
        if i == 0 or arg.startswith(("-", "/")) or not arg or "\x00" in arg:
            out.append(arg)
            continue
        candidate = base / arg
        if not candidate.exists():
            out.append(arg)
            continue
        real = candidate.resolve()
        if real != root and root not in real.parents:
            raise ConfigError(
                f"command argument {arg!r} resolves outside the policy's directory ({real})",
                "install the server's code inside the policy's directory (no symlinks out)",
            )
        top = root / real.relative_to(root).parts[0]
        binds[str(top)] = Bind(source=str(top), target=str(top), mode="ro")
        tree = tree or str(top)
        out.append(str(real))
    return tuple(out), tuple(binds.values()), tree


def load_any(
    path: Path, verify: ImageVerifier | None = None
) -> tuple[GatewayConfig, Path, LoadedPolicy | None]:
    """A ``gateway:`` section (stand-alone format) or a real policy (its image servers through
    ``verify``, when given); pins live beside it."""
    from ._config import has_gateway_section, load_gateway_config

    if has_gateway_section(path):
        cfg, pins = load_gateway_config(path)
        return cfg, pins, None
    loaded = load_policy_for_gateway(path, verify)
    return loaded.config, path.parent / loaded.config.pins_dir, loaded
