"""``stockade gateway --backend kubernetes``: the policy's image servers as gVisor Pods.

Without ``--apply`` it is a dry run: every server's image goes through the supply-chain gate,
its run is rendered and planned against the cluster (read-only), and the plan is printed; the
gateway does not start. With ``--apply``: every image is verified before anything else (a
refusal is recorded and the gateway does not start), then the gateway serves with a
:class:`stockade.kube.KubeLauncher` in place of the local sandbox launcher (each launch
preflights, applies, waits for the Pod, attaches its stdio; stop rolls the run back).
"""

from __future__ import annotations

import dataclasses
import functools
import secrets as _secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

from stockade import paths
from stockade.errors import StockadeError, UsageError
from stockade.kube import (
    KubeLauncher,
    RecordStore,
    RunParams,
    apply_run,
    default_record_dir,
    policy_renderer,
    render_server,
)
from stockade.kube._gateway import gateway_policy, image_servers
from stockade.models import Clock, SystemClock
from stockade.policy import Policy, load_policy
from stockade.textsafe import safe_text

from . import _k8s

__all__ = ["KubeGateway", "KubeOptions", "kube_gateway_options"]

_F = TypeVar("_F", bound=Callable[..., Any])


@dataclass(frozen=True)
class KubeOptions:
    kubeconfig: str | None = None
    context: str | None = None
    egress_proxy_ip: str | None = None
    egress_proxy_image: str | None = None
    egress_namespace: str = "stockade-egress"
    plain_http: tuple[str, ...] = ()
    unsafe_assume_networkpolicy: bool = False
    execute: bool = False


@dataclass(frozen=True)
class KubeGateway:
    """A verified policy, ready to serve on a cluster (built only after every image verified)."""

    policy: Policy
    policy_path: Path
    digests: dict[str, str]
    evidence: dict[str, dict[str, Any]]
    options: KubeOptions

    def config(self) -> tuple[Any, Path, Any]:
        """What ``load_any`` returns for a local gateway: config, pins directory, policy."""
        refs = {n: str(ev["verification"]["reference"]) for n, ev in self.evidence.items()}
        loaded = gateway_policy(self.policy, refs)
        return loaded.config, self.policy_path.parent / loaded.config.pins_dir, loaded

    def launcher(
        self, *, store: Any, audit: Any, clock: Clock
    ) -> tuple[KubeLauncher, dict[str, str]]:
        """The gateway's launcher: each server a Pod on the cluster, its run in ``store``."""
        policy, opts = self.policy, self.options
        for server in self.digests:  # granted values never reach the audit log
            values = _k8s._secret_values(policy, server)
            audit.add_secrets(v.decode("utf-8", "replace") for v in values.values())
        render = policy_renderer(
            policy,
            digests=self.digests,
            egress_proxy_ip=opts.egress_proxy_ip,
            egress_proxy_image=opts.egress_proxy_image,
            egress_namespace=opts.egress_namespace,
            secret_values=functools.partial(_k8s._secret_values, policy),
        )
        launcher = KubeLauncher(
            _k8s._connect_run(opts.kubeconfig, opts.context),
            render,
            records=RecordStore(default_record_dir()),
            clock=clock,
            wait=_k8s._wait,
            store=store,
            audit=audit,
            policy_hash=policy.effective_hash,
            unsafe_assume_networkpolicy=opts.unsafe_assume_networkpolicy,
            evidence=self.evidence,
        )
        return launcher, launcher.run_ids


def _verified(policy: Policy, server: str, opts: KubeOptions) -> tuple[str, dict[str, Any]]:
    """The supply-chain gate of ``stockade k8s run``; the evidence split by kind."""
    digest, ev = _k8s._verify_image(policy, server, None, opts.plain_http)
    image, sbom = ev.pop("image", None), ev.pop("sbom", None)
    out: dict[str, Any] = {"verification": ev}
    if image is not None:
        out["image"] = image
    if sbom is not None:
        out["sbom"] = sbom
    return digest, out


def _record_refusal(
    e: StockadeError,
    policy: Policy,
    server: str,
    store_path: Path | None,
    log: Path | None,
    *,
    backend: str = "kubernetes",
) -> str:
    """Record ``server``'s image refused (run store and audit log); the refused run's id."""
    from stockade.audit import AuditLog
    from stockade.sandbox import record_refused
    from stockade.store import RunStore

    log_path = log or paths.audit_log()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with (
        RunStore.open(store_path or paths.run_store()) as runs,
        AuditLog.open(log_path, paths.key_dir()) as audit,
    ):
        return record_refused(
            e, clock=SystemClock(), store=runs, audit=audit,
            workload=str(policy.server(server).image or server), kind="server", server=server,
            policy_hash=policy.effective_hash, backend=backend,
        )  # fmt: skip


def prepare(
    policy_path: Path, opts: KubeOptions, *, store_path: Path | None, audit_log: Path | None
) -> KubeGateway:
    """Verify every server's image (fail closed: the first refusal is recorded and raised)."""
    policy = load_policy(policy_path)
    digests: dict[str, str] = {}
    evidence: dict[str, dict[str, Any]] = {}
    for server in image_servers(policy):
        try:
            digests[server], evidence[server] = _verified(policy, server, opts)
        except StockadeError as e:
            _record_refusal(e, policy, server, store_path, audit_log)
            raise
    return KubeGateway(policy, policy_path, digests, evidence, opts)


def plan(policy_path: Path, opts: KubeOptions) -> int:
    """The dry run: verify, render and plan each server's run; change nothing. 1 if refused."""
    policy = load_policy(policy_path)
    refused = 0
    try:
        names = image_servers(policy)
    except StockadeError as e:
        click.echo(f"stockade: would refuse: {safe_text(e.what)}", err=True)
        names, refused = tuple(s.name for s in policy.servers if s.image is not None), 1
    api = _k8s._connect(opts.kubeconfig, opts.context)
    for server in names:
        try:
            digest, _ = _verified(policy, server, opts)
            rid = _secrets.token_hex(8)
            params = RunParams(
                run_id=rid,
                digest=digest,
                egress_proxy_ip=opts.egress_proxy_ip,
                egress_proxy_image=opts.egress_proxy_image,
                egress_namespace=opts.egress_namespace,
                egress_token=_secrets.token_urlsafe(32),
            )
            objs = render_server(policy, server, params)
            result = apply_run(
                api, objs, execute=False, store=RecordStore(default_record_dir()),
                clock=SystemClock(), server=server, run_id=rid,
                unsafe_assume_networkpolicy=opts.unsafe_assume_networkpolicy,
            )  # fmt: skip
        except StockadeError as e:
            click.echo(safe_text(f"stockade: would refuse: server {server}: {e.what}"), err=True)
            refused += 1
            continue
        click.echo(safe_text(f"# server {server}: image {policy.server(server).image} -> {digest}"))
        _k8s._print_plan(result, show_diff=True)
        for r in result.refusals:
            click.echo(safe_text(f"stockade: would refuse: server {server}: {r}"), err=True)
            refused += 1
    click.echo(
        "dry run: nothing was changed and no gateway started (pass --apply to serve)", err=True
    )
    return 1 if refused else 0


_OPTIONS = [
    click.option(
        "--backend",
        type=click.Choice(["local", "kubernetes"]),
        default="local",
        show_default=True,
        help="kubernetes: each server's verified image as a gVisor Pod (dry run unless --apply; "
        "see docs/kubernetes.md).",
    ),
    click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False)),
    click.option("--context", default=None, help="kubeconfig context (default: current)."),
    click.option("--egress-proxy-ip", default=None, help="ClusterIP of the egress proxy."),
    click.option("--egress-proxy-image", default=None, help=_k8s._PROXY_IMAGE_HELP),
    click.option("--egress-namespace", default="stockade-egress", show_default=True),
    click.option("--plain-http", multiple=True, help="Loopback registry host:port."),
    click.option(
        "--unsafe-assume-networkpolicy",
        is_flag=True,
        help="Proceed when stockade cannot tell whether NetworkPolicy is enforced (logged).",
    ),
    click.option(
        "--apply", "k8s_apply", is_flag=True, help="kubernetes: serve (default: print the plan)."
    ),
]
_KEYS = (
    "kubeconfig",
    "context",
    "egress_proxy_ip",
    "egress_proxy_image",
    "egress_namespace",
    "plain_http",
    "unsafe_assume_networkpolicy",
)


def kube_gateway_options(f: _F) -> _F:
    """Add ``--backend kubernetes`` and its options to the gateway command. The wrapped
    command gets ``kube``: None for the local backend, else a verified :class:`KubeGateway`
    (the dry run is answered here and never reaches it)."""

    @functools.wraps(f)
    def wrapper(**kw: Any) -> Any:
        backend = kw.pop("backend")
        opts = KubeOptions(**{k: kw.pop(k) for k in _KEYS}, execute=kw.pop("k8s_apply"))
        if backend == "local":  # --plain-http: a loopback registry of the local image servers
            if dataclasses.replace(opts, plain_http=()) != KubeOptions():
                raise UsageError(
                    "--kubeconfig, --context, --egress-proxy-ip/-image/-namespace, "
                    "--unsafe-assume-networkpolicy and --apply need --backend kubernetes",
                    "add --backend kubernetes, or drop them",
                )
            return f(**kw, kube=None, plain_http=opts.plain_http)
        if kw.get("unsafe_no_sandbox"):
            raise UsageError(
                "--unsafe-no-sandbox with --backend kubernetes: a Pod is always sandboxed",
                "drop --unsafe-no-sandbox",
            )
        if opts.unsafe_assume_networkpolicy:
            click.echo(
                "stockade: warning: --unsafe-assume-networkpolicy: egress control rests on your "
                "word that the network plugin enforces NetworkPolicy",
                err=True,
            )
        if not opts.execute:
            return plan(kw["policy_path"], opts)
        kube = prepare(
            kw["policy_path"], opts, store_path=kw.get("store_path"), audit_log=kw.get("audit_log")
        )
        return f(**kw, kube=kube)

    out: Any = wrapper
    for opt in reversed(_OPTIONS):
        out = opt(out)
    return out  # type: ignore[no-any-return]
