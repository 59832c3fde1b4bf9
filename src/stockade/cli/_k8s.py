"""``stockade k8s``: render, export cluster policies, plan/apply and roll back (dry-run default)."""

from __future__ import annotations

import secrets as _secrets
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

from stockade import paths
from stockade.admission import StockadeRules
from stockade.errors import StockadeError, UsageError
from stockade.kube import (
    CONFIG_DIR,
    Action,
    ApplyResult,
    AttachApi,
    ClusterApi,
    ExportParams,
    ObjRef,
    PreflightError,
    Pumped,
    RecordStore,
    RunParams,
    apply_run,
    check_namespace,
    check_run_id,
    default_record_dir,
    diff_text,
    dump_all,
    gatekeeper,
    kyverno,
    namespace_for,
    pod_outcome,
    render_server,
    rollback_run,
    run_pod,
    run_pod_attached,
)
from stockade.models import EndReason, SystemClock
from stockade.policy import Policy, load_policy
from stockade.textsafe import safe_text

__all__ = ["k8s"]


@click.group()
def k8s() -> None:
    """Run tool servers as hardened gVisor Pods on Kubernetes."""


_PROXY_IMAGE_HELP = (
    "stockade's image for the egress proxy (REF@sha256:..., from a listed registry); "
    "overrides the policy's kubernetes.egress_proxy_image"
)


def _run_id(value: str | None) -> str:
    return value if value is not None else _secrets.token_hex(8)


@k8s.command("render")
@click.option("--policy", "policy_file", required=True, type=click.Path(dir_okay=False))
@click.option("--server", required=True, help="the policy's server entry to render")
@click.option("--run-id", default=None, help="lowercase id (default: a new random one)")
@click.option("--namespace", default=None, help="default: stockade-<server>")
@click.option("--digest", default=None, help="sha256:... when the policy's image has only a tag")
@click.option("--egress-proxy-ip", default=None, help="ClusterIP of the egress proxy Service")
@click.option("--egress-proxy-image", default=None, help=_PROXY_IMAGE_HELP)
@click.option("--egress-namespace", default="stockade-egress", show_default=True)
def render_cmd(  # noqa: PLR0917 - click passes every option positionally by name
    policy_file: str,
    server: str,
    run_id: str | None,
    namespace: str | None,
    digest: str | None,
    egress_proxy_ip: str | None,
    egress_proxy_image: str | None,
    egress_namespace: str,
) -> None:
    """Print every object of one run as multi-document YAML (Secret values redacted)."""
    policy = load_policy(Path(policy_file))
    params = RunParams(
        run_id=_run_id(run_id),
        namespace=namespace,
        digest=digest,
        egress_proxy_ip=egress_proxy_ip,
        egress_proxy_image=egress_proxy_image,
        egress_namespace=egress_namespace,
        egress_token=_secrets.token_urlsafe(32),
    )
    objs = render_server(policy, server, params)
    click.echo(safe_text(dump_all(objs)), nl=False)


@k8s.command("policies")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), help="registries from")
@click.option("--registry", "registries", multiple=True, help="HOST/NAMESPACE/* (repeatable)")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["gatekeeper", "kyverno"]),
    default="gatekeeper",
    show_default=True,
)
@click.option("--egress-namespace", default="stockade-egress", show_default=True)
def policies_cmd(
    policy_file: str | None, registries: tuple[str, ...], fmt: str, egress_namespace: str
) -> None:
    """Print stockade's rules as cluster policies (an empty registry list denies every image)."""
    regs = tuple(registries)
    if policy_file is not None:
        regs = load_policy(Path(policy_file)).registries + regs
    StockadeRules.of(regs)  # refuses an invalid pattern (usage error)
    params = ExportParams(registries=regs, proxy_namespaces=(check_namespace(egress_namespace),))
    objs = gatekeeper(params) if fmt == "gatekeeper" else kyverno(params)
    click.echo(safe_text(dump_all(objs)), nl=False)


def _connect(kubeconfig: str | None, context: str | None) -> ClusterApi:
    """The cluster adapter (tests replace this with stockade.testing.FakeCluster)."""
    from stockade.kube._client import connect

    return connect(kubeconfig, context)


def _audit() -> Any:
    """The operator's audit log (only changes to a cluster are audited, not dry runs)."""
    from stockade.audit import AuditLog

    return AuditLog.open(paths.audit_log(), paths.key_dir())


def _secret_values(policy: Policy, server: str) -> dict[str, bytes]:
    names = policy.granted_secrets(server)
    if not names:
        return {}
    from stockade.secrets import DirectorySecretStore

    store = DirectorySecretStore(
        Path(policy.secret_store_path) if policy.secret_store_path else paths.secret_dir()
    )
    return {n: store.get(n) for n in names}


def _print_plan(result: ApplyResult, *, show_diff: bool) -> None:
    click.echo(safe_text(result.plan.summary()))
    if show_diff:
        for change in result.plan.changes:
            if change.action in (Action.CREATE, Action.UPDATE):
                click.echo(safe_text(diff_text(change)), nl=False)


_cluster_options = [
    click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False)),
    click.option("--context", default=None, help="kubeconfig context (default: current)"),
    click.option("--apply", "execute", is_flag=True, help="change the cluster (default: dry run)"),
]


def _with_cluster_options(fn: Any) -> Any:
    for opt in reversed(_cluster_options):
        fn = opt(fn)
    return fn


@k8s.command("apply")
@click.option("--policy", "policy_file", required=True, type=click.Path(dir_okay=False))
@click.option("--server", required=True)
@click.option("--run-id", default=None)
@click.option("--namespace", default=None)
@click.option("--digest", default=None)
@click.option("--egress-proxy-ip", default=None)
@click.option("--egress-proxy-image", default=None, help=_PROXY_IMAGE_HELP)
@click.option("--egress-namespace", default="stockade-egress", show_default=True)
@click.option("--no-diff", is_flag=True, help="print the plan without diffs")
@click.option(
    "--unsafe-assume-networkpolicy",
    is_flag=True,
    help="proceed when stockade cannot tell whether NetworkPolicy is enforced (logged)",
)
@_with_cluster_options
def apply_cmd(  # noqa: PLR0917 - click passes every option positionally by name
    policy_file: str,
    server: str,
    run_id: str | None,
    namespace: str | None,
    digest: str | None,
    egress_proxy_ip: str | None,
    egress_proxy_image: str | None,
    egress_namespace: str,
    no_diff: bool,
    unsafe_assume_networkpolicy: bool,
    kubeconfig: str | None,
    context: str | None,
    execute: bool,
) -> int:
    """Plan (and with --apply, make) one run's objects on the cluster; dry run by default."""
    policy = load_policy(Path(policy_file))
    rid = _run_id(run_id)
    params = RunParams(
        run_id=rid,
        namespace=namespace,
        digest=digest,
        egress_proxy_ip=egress_proxy_ip,
        egress_proxy_image=egress_proxy_image,
        egress_namespace=egress_namespace,
        egress_token=_secrets.token_urlsafe(32),
        secret_values=_secret_values(policy, server) if execute else None,
    )
    objs = render_server(policy, server, params)
    if unsafe_assume_networkpolicy:
        click.echo(
            "stockade: warning: --unsafe-assume-networkpolicy: egress control rests on your "
            "word that the network plugin enforces NetworkPolicy",
            err=True,
        )
    api = _connect(kubeconfig, context)
    with ExitStack() as stack:
        audit = stack.enter_context(_audit()) if execute else None
        result = apply_run(
            api,
            objs,
            execute=execute,
            store=RecordStore(default_record_dir()),
            clock=SystemClock(),
            server=server,
            run_id=rid,
            unsafe_assume_networkpolicy=unsafe_assume_networkpolicy,
            audit=audit,
        )
    _print_plan(result, show_diff=not no_diff)
    if not execute:
        for r in result.refusals:
            click.echo(f"stockade: would refuse: {safe_text(r)}", err=True)
        click.echo("dry run: nothing was changed (pass --apply to apply)", err=True)
        return 1 if result.refusals else 0
    record_id = result.record.id if result.record is not None else "(none)"
    click.echo(f"applied run {rid}; rollback target: {record_id}")
    return 0


@k8s.command("rollback")
@click.argument("record_id", required=False)
@click.option("--list", "list_only", is_flag=True, help="list rollback targets")
@_with_cluster_options
def rollback_cmd(
    record_id: str | None,
    list_only: bool,
    kubeconfig: str | None,
    context: str | None,
    execute: bool,
) -> None:
    """Undo an apply (the latest by default); dry run unless --apply."""
    store = RecordStore(default_record_dir())
    if list_only:
        for rid in store.ids():
            click.echo(rid)
        return
    record = store.load(record_id) if record_id else store.latest()
    api = _connect(kubeconfig, context)
    with ExitStack() as stack:
        audit = stack.enter_context(_audit()) if execute else None
        result = rollback_run(api, record, execute=execute, audit=audit)
    click.echo(f"rollback {record.id}:")
    for step in result.steps:
        click.echo(safe_text(step.describe()))
    if not execute:
        click.echo("dry run: nothing was changed (pass --apply to roll back)", err=True)


@k8s.command("status")
@click.option("--policy", "policy_file", required=True, type=click.Path(dir_okay=False))
@click.option("--server", required=True)
@click.option("--run-id", required=True)
@click.option("--namespace", default=None)
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False))
@click.option("--context", default=None)
def status_cmd(  # noqa: PLR0917 - click passes every option positionally by name
    policy_file: str,
    server: str,
    run_id: str,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
) -> int:
    """Read one run's Pod and say what became of it (exit 0 while running or after exit 0)."""
    load_policy(Path(policy_file)).server(server)  # the server must exist in the policy
    ref = ObjRef(
        "v1",
        "Pod",
        check_namespace(namespace or namespace_for(server)),
        f"stockade-{check_run_id(run_id)}",
    )
    out = pod_outcome(_connect(kubeconfig, context).get(ref))
    reason = out.end_reason.value if out.end_reason else "-"
    click.echo(f"{ref}: {out.status.value} ({reason}): {safe_text(out.detail)}")
    return 0 if not out.ended or (out.end_reason == EndReason.EXITED and out.exit_code == 0) else 1


@k8s.command("egress-proxy")
@click.option("--listen", default="0.0.0.0:3128", show_default=True, help="HOST:PORT")
@click.option(
    "--config",
    "config_dir",
    default=CONFIG_DIR,
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The mounted allowlists/ and tokens/ (ConfigMap and Secret).",
)
@click.option(
    "--sockets",
    default="/tmp/stockade-egress",  # nosec B108  # noqa: S108 - the proxy Pod's own emptyDir, not a host temp file
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
)
def egress_proxy_cmd(listen: str, config_dir: Path, sockets: Path) -> None:
    """Serve the cluster egress proxy (what the rendered proxy Deployment runs)."""
    from stockade.kube import ClusterEgressProxy, LineSink

    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"--listen {listen!r} is not HOST:PORT", "write e.g. 0.0.0.0:3128")
    sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
    proxy = ClusterEgressProxy((host.strip("[]"), int(port)), config_dir, sockets, audit=LineSink())
    proxy.start()
    click.echo(f"stockade: egress proxy listening on {listen}", err=True)
    try:
        threading.Event().wait()
    finally:
        proxy.close()


def _connect_run(kubeconfig: str | None, context: str | None) -> AttachApi:
    """The cluster adapter with log access (tests replace this with FakeCluster)."""
    from stockade.kube._client import connect

    return connect(kubeconfig, context)


def _attach_evidence(pumped: Pumped | None) -> dict[str, Any]:
    if pumped is None:
        return {}
    return {
        "attach": {
            "stdin_bytes": pumped.stdin_bytes,
            "stdout_bytes": pumped.stdout_bytes,
            "stderr_tail": pumped.stderr[-4096:],
            "stderr_dropped": pumped.stderr_dropped,
            "ended_by": pumped.ended_by,
        }
    }


def _wait(seconds: float) -> None:
    """One bounded pause between two reads of the Pod (tests replace it to move a fake)."""
    threading.Event().wait(min(seconds, 1.0))


def _verify_image(
    policy: Policy, server: str, digest: str | None, plain_http: tuple[str, ...]
) -> tuple[str, dict[str, Any]]:
    """The supply-chain gate local image runs use: registry allowlist, digest rule, signatures
    under the server's ``verify:`` rules. Returns the verified digest and the evidence."""
    from stockade.supplychain import (
        RegistryClient,
        SbomEvidence,
        image_gate,
        parse_reference,
        require_pinned,
        verification_evidence,
        verify_remote_image,
    )

    text = policy.server(server).image
    if text is None:
        raise UsageError(
            f"server {server!r} has no image: got a host command, expected an image",
            "give the server an image: (pinned by digest) to run it on Kubernetes",
        )
    gate = image_gate(policy, server)
    ref = parse_reference(text)
    if digest is not None and ref.digest is None:
        ref = ref.with_digest(digest)
    if gate.require_digest and ref.digest is None:
        require_pinned(text)  # raises: the policy demands a digest pin
    clock = SystemClock()
    with RegistryClient(plain_http=plain_http) as client:
        v = verify_remote_image(
            client,
            ref,
            allowlist=gate.allowlist,
            policy=gate.verification,
            clock=clock,
            approved_bases=gate.approved_bases,
            require_sbom=gate.require_sbom,
        )
    # The same fields a local image run records (supplychain verification_evidence), plus the
    # reference/digest the Pod is rendered with; "image" and "sbom" become their own evidence.
    evidence: dict[str, Any] = verification_evidence(v, clock.now().isoformat())
    evidence["reference"] = v.reference
    evidence["digest"] = v.pinned.digest
    evidence["image"] = {
        "requested": text,
        "reference": v.reference,
        "digest": v.pinned.digest,
        "pulled_by": "the cluster node (by digest)",
    }
    evidence["sbom"] = (v.sbom or SbomEvidence(present=False)).model_dump(mode="json")
    return v.pinned.digest, evidence


def _authorise(policy: Policy, server: str, reference: str, digest: str, audit: Any) -> None:
    """The policy's delegated ``task`` and ``secret_access`` questions, asked before a run as a
    local run asks them (docs/policy.md, OPA); a refusal or an unanswerable question raises."""
    from stockade.opa import Questions, authorise_run, local_client
    from stockade.sandbox import Overrides, build_spec, policy_limits

    questions = Questions.for_policy(policy, audit=audit, only=("task", "secret_access"))
    if questions is None:
        return
    spec = build_spec((reference,), policy_limits(policy, server), Overrides(), image_digest=digest)
    authorise_run(
        questions,
        client=local_client(),
        server=server,
        spec=spec,
        workload=reference,
        kind="server",
    )


@k8s.command("run")
@click.option("--policy", "policy_file", required=True, type=click.Path(dir_okay=False))
@click.option("--server", required=True)
@click.option("--run-id", default=None)
@click.option("--namespace", default=None)
@click.option("--digest", default=None)
@click.option("--egress-proxy-ip", default=None)
@click.option("--egress-proxy-image", default=None, help=_PROXY_IMAGE_HELP)
@click.option("--egress-namespace", default="stockade-egress", show_default=True)
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=None)
@click.option("--plain-http", "plain_http", multiple=True, help="Loopback registry host:port.")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--unsafe-assume-networkpolicy", is_flag=True)
@click.option("--kubeconfig", default=None, type=click.Path(dir_okay=False))
@click.option("--context", default=None)
@click.option("-i", "--interactive", is_flag=True, help="Attach this stdin/stdout to the Pod's.")
def run_cmd(  # noqa: PLR0917 - click passes every option positionally by name
    policy_file: str,
    server: str,
    run_id: str | None,
    namespace: str | None,
    digest: str | None,
    egress_proxy_ip: str | None,
    egress_proxy_image: str | None,
    egress_namespace: str,
    timeout_s: float | None,
    plain_http: tuple[str, ...],
    store_path: Path | None,
    unsafe_assume_networkpolicy: bool,
    kubeconfig: str | None,
    context: str | None,
    interactive: bool,
) -> int:
    """Verify the image, apply one run, watch its Pod to its end or the deadline, print its
    log, delete what the run created, and record it all in the run store. With -i, this
    stdin/stdout are attached to the server's (an MCP server's JSON-RPC passes through)."""
    return run_on_kubernetes(
        policy_file,
        server,
        run_id=run_id,
        namespace=namespace,
        digest=digest,
        egress_proxy_ip=egress_proxy_ip,
        egress_proxy_image=egress_proxy_image,
        egress_namespace=egress_namespace,
        timeout_s=timeout_s,
        plain_http=plain_http,
        store=store_path,
        unsafe_assume_networkpolicy=unsafe_assume_networkpolicy,
        kubeconfig=kubeconfig,
        context=context,
        interactive=interactive,
    )


def run_on_kubernetes(
    policy_file: str,
    server: str,
    *,
    run_id: str | None = None,
    namespace: str | None = None,
    digest: str | None = None,
    egress_proxy_ip: str | None = None,
    egress_proxy_image: str | None = None,
    egress_namespace: str = "stockade-egress",
    timeout_s: float | None = None,
    plain_http: tuple[str, ...] = (),
    store: Path | None = None,
    unsafe_assume_networkpolicy: bool = False,
    kubeconfig: str | None = None,
    context: str | None = None,
    interactive: bool = False,
) -> int:
    """``stockade k8s run`` and ``stockade run --backend kubernetes``; returns the exit code.
    ``interactive``: the caller's stdin/stdout pass through the Pod's attached stdio."""
    store_path = store
    from stockade.models import RunRecord, RunStatus
    from stockade.sandbox import policy_limits, record_refused
    from stockade.store import RunStore

    policy = load_policy(Path(policy_file))
    rid = _run_id(run_id)
    clock = SystemClock()
    workload = str(policy.server(server).image or server)
    with RunStore.open(store_path or paths.run_store()) as runs, _audit() as audit:
        known_digest: str | None = None
        try:
            verified_digest, verification = _verify_image(policy, server, digest, plain_http)
            known_digest = verified_digest
            limits = policy_limits(policy, server)
            # OPA's task and secret_access, before any secret value is read or cluster call made
            _authorise(policy, server, str(verification["reference"]), verified_digest, audit)
            params = RunParams(
                run_id=rid,
                namespace=namespace,
                digest=verified_digest,
                egress_proxy_ip=egress_proxy_ip,
                egress_proxy_image=egress_proxy_image,
                egress_namespace=egress_namespace,
                egress_token=_secrets.token_urlsafe(32),
                secret_values=_secret_values(policy, server),
            )
            objs = render_server(policy, server, params)
        except StockadeError as e:
            record_refused(
                e, clock=clock, store=runs, audit=audit, workload=workload, kind="server",
                server=server, policy_hash=policy.effective_hash, image_digest=known_digest,
                backend="kubernetes",
            )  # fmt: skip
            raise
        limit = timeout_s if timeout_s is not None else limits.timeout_s
        runs.create(
            RunRecord(
                run_id=rid,
                workload=str(verification["reference"]),
                kind="server",
                server=server,
                backend="kubernetes",
                policy_hash=policy.effective_hash,
                image_digest=verified_digest,
                status=RunStatus.RUNNING,
                created_at=clock.now(),
                started_at=clock.now(),
            )
        )
        image_ev, sbom_ev = verification.pop("image", None), verification.pop("sbom", None)
        runs.add_evidence(rid, "verification", verification)
        if image_ev is not None:
            runs.add_evidence(rid, "image", image_ev)
        if sbom_ev is not None:
            runs.add_evidence(rid, "sbom", sbom_ev)
        pumped: Pumped | None = None
        try:
            api = _connect_run(kubeconfig, context)
            common: dict[str, Any] = {
                "store": RecordStore(default_record_dir()),
                "clock": clock,
                "wait": _wait,
                "server": server,
                "run_id": rid,
                "timeout_s": limit,
                "audit": audit,
                "unsafe_assume_networkpolicy": unsafe_assume_networkpolicy,
            }
            if interactive:
                got, pumped = run_pod_attached(
                    api, objs, stdin=sys.stdin.buffer, stdout=sys.stdout.buffer, **common
                )
            else:
                got = run_pod(api, objs, **common)
        except (StockadeError, KeyboardInterrupt) as e:
            what = e.what if isinstance(e, StockadeError) else "interrupted (Ctrl-C)"
            runs.update(
                rid,
                status=RunStatus.REFUSED if isinstance(e, PreflightError) else RunStatus.FAILED,
                end_reason=EndReason.REFUSED if isinstance(e, PreflightError) else EndReason.ERROR,
                ended_at=clock.now(),
            )
            runs.add_evidence(rid, "k8s", {"error": what})
            raise
        out = got.supervised.outcome
        runs.update(
            rid,
            status=out.status,
            end_reason=out.end_reason,
            exit_code=out.exit_code,
            ended_at=clock.now(),
        )
        runs.add_evidence(
            rid,
            "k8s",
            {
                "detail": out.detail,
                "cleanup": [st.describe().strip() for st in got.cleanup.steps],
                "log_tail": got.supervised.log[-4096:],
                **_attach_evidence(pumped),
            },
        )
    if pumped is not None:  # stdout already went to the caller; stderr is sanitised
        click.echo(pumped.stderr, nl=False, err=True)
    elif not interactive:
        click.echo(safe_text(got.supervised.log), nl=False)
    reason = out.end_reason.value if out.end_reason else "-"
    click.echo(f"run {rid}: {out.status.value} ({reason}): {safe_text(out.detail)}", err=True)
    for step in got.cleanup.steps:
        click.echo(safe_text(step.describe()), err=True)
    return 0 if out.end_reason == EndReason.EXITED and out.exit_code == 0 else 1
