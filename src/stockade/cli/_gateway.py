"""``stockade gateway`` (serve MCP) and ``stockade tools diff|approve`` (tool pins)."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import click

from stockade import paths
from stockade.errors import UsageError
from stockade.gateway import (
    DownstreamError,
    EngineDecider,
    Gateway,
    HttpTransport,
    Launcher,
    ListApprover,
    PinError,
    PinStore,
    PolicyDecider,
    RuleDecider,
    SandboxLauncher,
    SubprocessLauncher,
    TerminalApprover,
    approve,
    load_any,
    package_identity,
    serve_http,
    serve_stdio,
)
from stockade.models import Approver, SystemClock
from stockade.textsafe import safe_text

from ._k8s_gateway import KubeGateway, kube_gateway_options

__all__ = ["alert_options", "gateway", "policy_import", "tools"]

_F = TypeVar("_F", bound=Callable[..., Any])


def alert_options(f: _F) -> _F:
    """``--alert-command CMD`` / ``--alert-webhook URL`` for a command that wraps its audit sink."""
    f = click.option(
        "--alert-webhook",
        default=None,
        metavar="URL",
        help="POST alerts (server failed/crashed, kill switch) here: https or loopback only.",
    )(f)
    return click.option(
        "--alert-command",
        default=None,
        metavar="CMD",
        help="Run CMD (split on spaces, no shell; alert JSON on stdin) on each alert.",
    )(f)


_policy_option = click.option(
    "--policy",
    "policy_path",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A stockade policy (or a stand-alone file with a 'gateway:' section).",
)


@click.command(name="gateway")
@kube_gateway_options
@_policy_option
@alert_options
@click.option("--stdio", "use_stdio", is_flag=True, help="Serve MCP on stdin/stdout.")
@click.option(
    "--http",
    default=None,
    metavar="HOST:PORT",
    help="Serve Streamable HTTP on a loopback address (non-loopback is refused: no TLS yet).",
)
@click.option(
    "--client-token",
    multiple=True,
    metavar="CLIENT=SECRET",
    help="HTTP: client CLIENT authenticates with the bearer token stored as secret SECRET.",
)
@click.option(
    "--unsafe-no-auth",
    is_flag=True,
    help="HTTP: take requests without a token as --client (UNSAFE: loopback conformance tests "
    "only; audited).",
)
@click.option(
    "--unsafe-no-sandbox",
    is_flag=True,
    help="Run downstream servers as plain child processes (UNSAFE: testing only).",
)
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Audit log (default: $STOCKADE_HOME/audit/audit.jsonl).",
)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run store (SQLite). Default: $STOCKADE_HOME/runs.db",
)
@click.option(
    "--client",
    default="stdio",
    show_default=True,
    help="Identity of the agent on stdio (the client policy and taint key on).",
)
@click.option(
    "--approver",
    type=click.Choice(["list", "tty", "store"]),
    default=None,
    help="Who answers require_approval: the --auto-approve list (else deny), /dev/tty, or the "
    "approval store (answered with 'stockade approvals' or its web page). Default: store for a "
    "stockade policy, list (which denies what is not listed) for a 'gateway:' section.",
)
@click.option(
    "--approval-page",
    default=None,
    metavar="URL",
    help="Where the operator reaches 'stockade approvals serve' (e.g. http://127.0.0.1:8765): "
    "URL-mode elicitation points the agent's user there. Without it, categories that only an "
    "operator may approve get no URL elicitation and wait for the operator channels.",
)
@click.option(
    "--auto-approve",
    multiple=True,
    metavar="SERVER__TOOL",
    help="With --approver list: approve this exact tool automatically (repeatable).",
)
@click.option(
    "--host-token-secret",
    default=None,
    metavar="SECRET",
    help="Secret (in the secret store) holding the host application's credential.",
)
@click.option(
    "--host-token-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="File holding the host application's credential for registering trusted context.",
)
def gateway(
    *,
    policy_path: Path,
    use_stdio: bool,
    http: str | None,
    client_token: tuple[str, ...],
    unsafe_no_sandbox: bool,
    unsafe_no_auth: bool,
    audit_log: Path | None,
    store_path: Path | None,
    host_token_file: Path | None,
    host_token_secret: str | None,
    client: str,
    approver: str | None,
    approval_page: str | None,
    auto_approve: tuple[str, ...],
    alert_command: str | None,
    alert_webhook: str | None,
    kube: KubeGateway | None,
    plain_http: tuple[str, ...] = (),
) -> None:
    """Serve one MCP endpoint that gates every tool call of the policy's servers."""
    if use_stdio == (http is not None):
        raise UsageError("choose exactly one transport", "pass --stdio or --http 127.0.0.1:PORT")
    if kube is None and unsafe_no_sandbox:
        cfg, pins_dir, loaded = load_any(policy_path)
        _refuse_unsandboxed_images(cfg)
    elif kube is None:  # every image through the supply-chain gate before anything is served
        from ._gateway_images import image_verifier

        verify = image_verifier(
            plain_http=plain_http, store_path=store_path, audit_log=audit_log, clock=SystemClock()
        )
        cfg, pins_dir, loaded = load_any(policy_path, verify)
    else:
        cfg, pins_dir, loaded = kube.config()
    tokens = _client_tokens(client_token)
    if loaded is not None and loaded.policy.doc.clients is None:
        cfg = cfg.model_copy(update={"clients": (client, *sorted(tokens))})
    unknown = sorted(set(tokens) - set(cfg.clients))
    if unknown:
        raise UsageError(
            f"client token(s) for {', '.join(unknown)} but the policy knows only "
            f"{', '.join(cfg.clients)}",
            "add the clients to the policy or drop their --client-token",
        )
    if use_stdio and client not in cfg.clients:
        raise UsageError(
            f"client {client!r} is not one the policy knows (got {client!r}, expected one of "
            f"{', '.join(cfg.clients)})",
            "pass --client with a name from the policy's clients section",
        )
    host_cred = host_token_file.read_text(encoding="utf-8").strip() if host_token_file else None
    if host_token_secret is not None:
        from stockade.secrets import DirectorySecretStore

        stored = DirectorySecretStore(paths.secret_dir()).get(host_token_secret)
        host_cred = stored.decode("utf-8").strip()
    from stockade.audit import AuditLog
    from stockade.gates._alerting_sink import alert_hooks, with_alerts
    from stockade.store import RunStore

    hooks = alert_hooks(alert_command, alert_webhook)
    log_path = audit_log or paths.audit_log()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    clock = SystemClock()
    with (
        AuditLog.open(log_path, paths.key_dir()) as log,
        RunStore.open(store_path or paths.run_store()) as store,
        contextlib.ExitStack() as cleanup,
    ):
        sink = counted_sink(with_alerts(log, hooks, clock), store_path or paths.run_store(), clock)
        sink.append(
            "gateway.start",
            {
                "policy": str(policy_path),
                "servers": [s.name for s in cfg.servers],
                "unsafe_no_sandbox": unsafe_no_sandbox,
                "policy_hash": None if loaded is None else loaded.hash,
                "client": client,
                "images": {s.name: s.image.reference for s in cfg.servers if s.image is not None},
            },
        )
        launcher: Launcher
        if unsafe_no_sandbox:
            click.echo("stockade: warning: UNSAFE: downstream servers run unsandboxed", err=True)
            launcher = SubprocessLauncher()
            run_ids: dict[str, str] = {}
        elif kube is not None:  # --backend kubernetes --apply: verified images as Pods
            launcher, run_ids = kube.launcher(store=store, audit=sink, clock=clock)
        else:
            granted = sorted({n for s in cfg.servers for n in s.sandbox.secrets})
            secret_store: Any = None
            if granted:
                from stockade.secrets import DirectorySecretStore, values_for_redaction

                secret_store = DirectorySecretStore(paths.secret_dir())
                sink.add_secrets(
                    v.decode("utf-8", "replace")
                    for v in values_for_redaction(secret_store, granted)
                )
            sizes = _warm_pools(loaded)
            sandboxed: Any
            if sizes:
                from stockade.sandbox._pool_launcher import PoolLauncher

                sandboxed = PoolLauncher(
                    state=paths.home() / "sandbox",
                    clock=clock,
                    sizes=sizes,
                    store=store,
                    audit=sink,
                    policy_hash="" if loaded is None else loaded.hash,
                    secrets=secret_store,
                )
                cleanup.callback(sandboxed.close)  # no warm sandbox outlives the gateway
                sandboxed.prepare([s for s in cfg.servers if s.name in sizes])
            else:
                sandboxed = SandboxLauncher(
                    state=paths.home() / "sandbox",
                    clock=clock,
                    store=store,
                    audit=sink,
                    policy_hash="" if loaded is None else loaded.hash,
                    secrets=secret_store,
                )
            launcher, run_ids = sandboxed, sandboxed.run_ids
        if loaded is not None:  # OPA's secret_access, when delegated, before each launch
            from stockade.gateway._opa_step import opa_launcher_for

            launcher = opa_launcher_for(loaded.policy, launcher, audit=sink)

        def evidence(server: str, data: dict[str, Any]) -> None:
            if server in run_ids:
                store.add_evidence(run_ids[server], "decision", data)

        if unsafe_no_sandbox:
            unlaunched = "none: gateway runs with --unsafe-no-sandbox"
        elif kube is not None:
            unlaunched = "not launched yet: its gVisor Pod is created at its first launch"
        else:
            unlaunched = "not launched yet: its sandbox is started at its first launch"

        def traces() -> dict[str, Any]:
            out: dict[str, Any] = {}
            for s in cfg.servers:
                if s.name in run_ids:
                    out[s.name] = store.trace(run_ids[s.name]).model_dump(mode="json")
                else:
                    out[s.name] = {"sandbox": unlaunched}
            return out

        if approver is None:  # any stockade policy: the operator channels (docs/approvals.md §5)
            from stockade.approvals import default_approver

            approver = default_approver(None if loaded is None else loaded.policy)
        approver_obj: Approver
        channel: Any = None  # the MCP elicitation channel (store approver only)
        if approver == "store":
            if loaded is None:
                raise UsageError(
                    "--approver store needs a stockade policy (not a 'gateway:' section)",
                    "use --approver list or tty, or serve a policy file",
                )
            from stockade.approvals import elicitation_channel, store_approver

            channel, notes = elicitation_channel(
                loaded.policy,
                store_path or paths.run_store(),
                clock,
                audit=sink,
                page_url=approval_page,
            )
            for note in notes:
                click.echo(safe_text(f"stockade: {note}", single_line=True), err=True)
            approver_obj = store_approver(
                loaded.policy,
                store_path or paths.run_store(),
                clock,
                audit=sink,
                run_id=run_ids.get,
                channel=channel,
            )
        elif approver == "tty":
            approver_obj = TerminalApprover(timeout_s=cfg.approval_timeout_s)
        else:
            approver_obj = ListApprover(allow=auto_approve)
        decider: PolicyDecider = (
            RuleDecider.from_config(cfg) if loaded is None else EngineDecider(loaded.policy, clock)
        )
        if loaded is not None:  # the policy's opa: section (docs/policy.md, "OPA")
            from stockade.gateway._opa_step import opa_decider_for

            decider = opa_decider_for(loaded.policy, decider, audit=sink)
        watch: Callable[[], Coroutine[None, None, None]] | None = None
        if loaded is not None:
            from stockade.approvals import ApprovalStore, VetoDecider

            approvals_store = ApprovalStore(store_path or paths.run_store(), audit=sink)
            decider = VetoDecider(decider, loaded.policy, approvals_store, clock, audit=sink)
        if loaded is not None:  # while the kill switch is engaged no server is (re)started
            launcher = KillGate(launcher, approvals_store)
        gw = Gateway(
            cfg,
            pins=PinStore(pins_dir),
            launcher=launcher,
            decider=decider,
            approver=approver_obj,
            audit=sink,
            clock=clock,
            host_credential=host_cred,
            evidence=evidence,
            traces=traces,
            sinks=None if loaded is None else loaded.sinks,
            approval_timeouts=None if loaded is None else loaded.policy.doc.approvals.timeout_for,
            opa=None if loaded is None else _gateway_questions(loaded.policy, sink),
        )
        if loaded is not None:
            from stockade.approvals import watch_kill

            on_kill = _stop_on_kill(gw, sink, store, run_ids)
            kill_store = approvals_store

            def watch() -> Coroutine[None, None, None]:
                return watch_kill(kill_store, on_kill)

        if http is None:
            _serve(_with_watch(serve_stdio(gw, client=client, channel=channel), watch))
        else:
            host, port = _host_port(http)
            anonymous = client if unsafe_no_auth else None
            if anonymous is not None:
                click.echo(f"stockade: warning: UNSAFE: no auth, acting as {client}", err=True)
            transport = HttpTransport(
                gw,
                host=host,
                port=port,
                tokens=tokens,
                unsafe_no_auth_client=anonymous,
                channel=channel,
            )
            click.echo(f"stockade: gateway listening on http://{host}:{port}/mcp", err=True)
            _serve(_with_watch(serve_http(gw, transport, host), watch))


def _serve(main: Coroutine[None, None, None]) -> None:
    """Serve until the client leaves. SIGTERM (a supervisor, or an MCP client giving up on a slow
    exit) ends serving like Ctrl-C does: the event loop cancels its tasks, so the servers are
    closed and the clean-up that follows still stops every sandbox and warm pool; without this a
    SIGTERM ended the process with sandbox state left behind."""
    import signal
    import threading

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if main_thread else None
    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        click.echo("stockade: gateway stopping on a signal; stopping its servers", err=True)
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


def _gateway_questions(policy: Any, sink: Any) -> Any:
    """OPA's delegation and data_access, when the policy delegates them (docs/policy.md)."""
    from stockade.gateway._opa_step import gateway_questions_for

    return gateway_questions_for(policy, audit=sink)


async def _with_watch(
    main: Awaitable[None], watch: Callable[[], Coroutine[None, None, None]] | None
) -> None:
    """Serve ``main``; alongside it, the kill-switch watch (cancelled when serving ends)."""
    task = asyncio.create_task(watch()) if watch is not None else None
    try:
        await main
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _stop_on_kill(
    gw: Gateway, sink: Any, store: Any, run_ids: dict[str, str]
) -> Callable[[Any], Awaitable[None]]:
    """``stockade kill``: stop every running downstream server, recording why in its run."""

    async def stop(kill: Any) -> None:
        stopped: list[str] = []
        for name, session in list(gw.sessions.items()):
            if not session.running:
                continue
            if name in run_ids:
                store.add_evidence(
                    run_ids[name],
                    "kill_switch",
                    {"by": kill.by, "reason": kill.reason, "action": "server stopped"},
                )
            if await gw.stop_server(name):  # stays down until a call after the lift
                stopped.append(name)
        sink.append(
            "gateway.kill_switch",
            {"by": kill.by, "reason": kill.reason, "stopped": stopped},
        )
        click.echo(
            safe_text(
                f"stockade: kill switch engaged by {kill.by}: {kill.reason}; "
                f"stopped {len(stopped)} server(s)",
                single_line=True,
            ),
            err=True,
        )

    return stop


class KillGate:
    """A launcher that refuses every launch while the kill switch is engaged (a revival, a lazy
    first start, a restart after a crash): ``stockade kill`` stops the gateway's sandboxes, and
    none may start again until an operator lifts it."""

    def __init__(self, inner: Launcher, approvals: Any) -> None:
        self._inner = inner
        self._approvals = approvals

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)  # launchers carry extras (run_ids, close, ...)

    async def launch(self, server: Any) -> Any:
        kill = await asyncio.to_thread(self._approvals.kill_switch)
        if kill.engaged:
            raise DownstreamError(
                f"server {server.name!r} is not started: the kill switch is engaged by "
                f"{kill.by or 'an operator'} ({kill.reason})",
                "an operator lifts it with: stockade kill --lift --reason TEXT",
            )
        return await self._inner.launch(server)


def _refuse_unsandboxed_images(cfg: Any) -> None:
    """``--unsafe-no-sandbox`` never runs an image server (its command exists only in the
    image's verified rootfs, which only the sandbox mounts)."""
    imaged = [s.name for s in cfg.servers if s.image is not None]
    if imaged:
        raise UsageError(
            f"--unsafe-no-sandbox cannot serve image server(s) {', '.join(imaged)}: an image "
            "runs only verified, in gVisor",
            "drop --unsafe-no-sandbox",
        )


def counted_sink(inner: Any, db: Path, clock: Any) -> Any:
    """The gateway's audit sink: ``inner``, counting each ``egress.blocked`` of a run in the run
    store at ``db`` (``stockade_egress_blocked_total`` on ``/metrics``); the launchers get it."""
    from stockade.store import EgressCounter, RunStore

    return EgressCounter(inner, lambda: RunStore.open(db), clock)


def _warm_pools(loaded: Any) -> dict[str, int]:
    """The policy's ``warm_pool: N`` per server (servers asking for none are left out). A server
    with granted secrets is never pooled (secrets are per run: each is delivered by a launch,
    after OPA's ``secret_access`` when delegated); the gateway says so and starts it cold."""
    if loaded is None:
        return {}
    sizes: dict[str, int] = {}
    for s in loaded.policy.servers:
        if s.warm_pool > 0 and s.image is not None:
            click.echo(
                safe_text(
                    f"stockade: warm_pool of server {s.name} ignored: an image server starts "
                    "cold (each run records its image's verification)",
                    single_line=True,
                ),
                err=True,
            )
        elif s.warm_pool > 0 and s.secrets:
            click.echo(
                safe_text(
                    f"stockade: warm_pool of server {s.name} ignored: it is granted secrets, "
                    "which are delivered per launch; it starts cold",
                    single_line=True,
                ),
                err=True,
            )
        elif s.warm_pool > 0:
            sizes[s.name] = s.warm_pool
    return sizes


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(f"--http {value!r} is not HOST:PORT", "write e.g. 127.0.0.1:8765")
    return host.strip("[]"), int(port)


def _client_tokens(pairs: tuple[str, ...]) -> dict[str, str]:
    if not pairs:
        return {}
    from stockade.secrets import DirectorySecretStore

    store = DirectorySecretStore(paths.secret_dir())
    out: dict[str, str] = {}
    for pair in pairs:
        client, sep, secret = pair.partition("=")
        if not sep or not client or not secret:
            raise UsageError(
                f"--client-token {pair!r} is not CLIENT=SECRET", "name a stored secret"
            )
        out[client] = store.get(secret).decode("utf-8").strip()
    return out


@click.group(name="tools")
def tools() -> None:
    """Review and approve pinned MCP tool definitions."""


@tools.command(name="diff")
@_policy_option
@click.option("--json", "as_json", is_flag=True, help="Print pending definitions as JSON.")
def tools_diff(policy_path: Path, as_json: bool) -> None:
    """Show tools whose definitions are new or changed and therefore hidden."""
    cfg, pins_dir, _ = load_any(policy_path)
    store = PinStore(pins_dir)
    report: list[dict[str, object]] = []
    for spec in cfg.servers:
        pins = store.load(spec.name)
        _, pending = store.load_pending(spec.name)
        for name, p in sorted(pending.items()):
            old = pins.tools.get(name)
            report.append(
                {
                    "server": spec.name,
                    "tool": name,
                    "reason": p.reason,
                    "hash": p.hash,
                    "pinned_hash": old.hash if old else None,
                    "findings": [f.model_dump() for f in p.findings],
                    "definition": p.definition,
                }
            )
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=True))
        return
    if not report:
        click.echo("no pending tool definitions")
        return
    for r in report:
        head = f"{r['server']}__{r['tool']}: {r['reason']} -> {r['hash']}"
        click.echo(safe_text(head, single_line=True))
        if r["pinned_hash"]:
            click.echo(f"  pinned: {r['pinned_hash']}")
        findings = r["findings"]
        assert isinstance(findings, list)  # noqa: S101 - built above
        for f in findings:
            click.echo(
                "  FINDING "
                + safe_text(f"{f['kind']} at {f['where']}: {f['detail']}", single_line=True)
            )
        body = json.dumps(r["definition"], indent=2, sort_keys=True, ensure_ascii=False)
        for line in body.splitlines():
            click.echo("  | " + safe_text(line, single_line=True, limit=200))


@tools.command(name="approve")
@_policy_option
@click.argument("server")
@click.argument("tool")
@click.option("--hash", "expected", required=True, help="The pending hash shown by 'tools diff'.")
def tools_approve(policy_path: Path, server: str, tool: str, expected: str) -> None:
    """Pin a pending definition (must match --hash exactly, so you approve what you reviewed)."""
    cfg, pins_dir, _ = load_any(policy_path)
    spec = next((s for s in cfg.servers if s.name == server), None)
    if spec is None:
        raise UsageError(f"no server {server!r} in the policy", "see the gateway section's servers")
    store = PinStore(pins_dir)
    package, pending = store.load_pending(server)
    p = pending.get(tool)
    if p is None:
        raise PinError(
            f"no pending definition for {server}__{tool}", "run 'stockade tools diff' first"
        )
    if p.hash != expected:
        raise PinError(
            f"pending hash is {p.hash}, expected {expected}", "review 'stockade tools diff' again"
        )
    if package != package_identity(spec):
        raise PinError(
            f"pending list was made for package {package!r}, policy says {spec.package!r}",
            "restart the gateway",
        )
    from stockade.audit import AuditLog

    approved_by = f"operator:{getpass.getuser()}"
    store.save(approve(store.load(server), p, package=package, approved_by=approved_by))
    del pending[tool]
    store.save_pending(server, package, pending)
    log_path = paths.audit_log()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with AuditLog.open(log_path, paths.key_dir()) as sink:
        sink.append(
            "gateway.pin",
            {
                "event": "pin.approved",
                "server": server,
                "tool": tool,
                "hash": p.hash,
                "replaces": p.pinned_hash,
                "reason": p.reason,
                "findings": [f.model_dump() for f in p.findings],
                "approved_by": approved_by,
            },
        )
    click.echo(safe_text(f"pinned {server}__{tool} {p.hash}", single_line=True))


@click.command(name="import")
@click.argument("config", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Policy file to write (refused if it exists).",
)
@click.option(
    "--secret-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Secret store for moved credentials. Default: $STOCKADE_HOME/secrets",
)
def policy_import(config: Path, out: Path, secret_dir: Path | None) -> None:
    """Import an {"mcpServers": ...} client configuration as a policy (credentials -> secrets)."""
    import yaml

    from stockade.gateway import import_mcp_servers
    from stockade.policy import load_policy
    from stockade.secrets import DirectorySecretStore

    if out.exists():
        raise UsageError(f"{out} exists", "choose a new --out path")
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except ValueError as e:
        raise UsageError(f"{config} is not JSON: {e}", "give the client's JSON config") from e
    result = import_mcp_servers(data)
    if result.secrets:
        store_dir = secret_dir or paths.secret_dir()
        store_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        store = DirectorySecretStore(store_dir)
        for name, value in result.secrets.items():
            store.put(name, value.encode("utf-8"))
    out.write_text(yaml.safe_dump(result.doc, sort_keys=False), encoding="utf-8")
    load_policy(out)  # the written policy must load; raises with every problem otherwise
    for note in result.notes:
        click.echo(safe_text(note, single_line=True))
    click.echo(safe_text(f"wrote {out} ({len(result.doc['servers'])} server(s))", single_line=True))
