"""``stockade approvals list|show|approve|deny|watch`` and ``stockade kill [--lift]``.

Decisions are written to the run store, where the gateway's approver waits for them. Every
string that came from a tool call (server, tool, arguments, reasons) goes through ``safe_text``.
"""

from __future__ import annotations

import getpass
import json
import secrets
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Literal

import click

from stockade import paths
from stockade.approvals import (
    MAX_PAYLOAD,
    ApprovalRequest,
    ApprovalStore,
    Event,
    PageServer,
    Remembered,
    State,
    StoreApprover,
    after,
    approval_app,
    before,
    error_result,
    loopback_socket,
    metrics,
    operator_secret_name,
    policy_file_hash,
    remember_from,
)
from stockade.audit import AuditLog
from stockade.cli._gateway import alert_options
from stockade.errors import StockadeError
from stockade.models import Decision, SystemClock, ToolCall
from stockade.policy import DecisionContext, decide, load_policy
from stockade.secrets import DirectorySecretStore
from stockade.textsafe import safe_text

__all__ = ["approvals", "intercept", "kill"]

DEFAULT_PORT = 8765

_store_option = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run store (SQLite). Default: $STOCKADE_HOME/runs.db",
)
_by_option = click.option(
    "--by", default=None, help="Operator name recorded with the decision (default: your login)."
)


def s(value: object, limit: int = 200) -> str:
    return safe_text(str(value), single_line=True, limit=limit)


@contextmanager
def _audit_log(*, create: bool = False) -> Iterator[AuditLog | None]:
    """The audit log when one exists (decisions are always recorded in the store as well)."""
    log_path = paths.audit_log()
    if create and not log_path.exists():
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with AuditLog.open(log_path, paths.key_dir()) as created:
            yield created
        return
    if not log_path.exists():
        yield None
        return
    with AuditLog.open_existing(log_path, paths.key_dir()) as log:
        yield log


@contextmanager
def _open(store_path: Path | None) -> Iterator[ApprovalStore]:
    """The approval store; transitions also go to the audit log when one exists."""
    with (
        _audit_log() as log,
        ApprovalStore(store_path or paths.run_store(), audit=log) as store,
    ):
        yield store


def _line(r: ApprovalRequest) -> str:
    return (
        f"{s(r.id):<22}  {r.state.value:<9}  {r.category.value:<18}  "
        f"{s(r.call.server, 30)}__{s(r.call.tool, 40)}  expires {r.expires_at:%Y-%m-%d %H:%M:%S}Z"
    )


def _detail(r: ApprovalRequest) -> str:
    args = json.dumps(r.call.arguments, sort_keys=True, indent=2, ensure_ascii=False)
    lines = [
        f"id          {s(r.id)}",
        f"state       {r.state.value}",
        f"category    {r.category.value}",
        f"why         {s(r.reason, 500)}",
        f"rule        {s(r.rule or '-')}",
        f"provenance  {s('; '.join(r.provenance) or 'none recorded', 600)}",
        f"run         {s(r.run_id or '-')}",
        f"server      {s(r.call.server)}",
        f"tool        {s(r.call.tool)}",
        f"client      {s(r.call.client)}   session {s(r.call.session or '-')}",
        f"image       {s(r.binding.image_digest or '-')}",
        f"policy      {s(r.binding.policy_hash)}",
        f"digest      {r.digest}",
        f"created     {r.created_at.isoformat()}",
        f"expires     {r.expires_at.isoformat()}",
    ]
    if r.decided_by:
        lines.append(
            f"decided     {r.state.value} by {s(r.decided_by)} via {s(r.channel)}"
            f"{' (' + s(r.note, 300) + ')' if r.note else ''}"
        )
    lines.append("arguments (untrusted):")
    lines += ["  " + safe_text(a, single_line=True, limit=400) for a in args.splitlines()[:200]]
    return "\n".join(lines)


@click.group(name="approvals")
def approvals() -> None:
    """Human approval of sensitive tool calls (the gateway waits for these decisions)."""


@approvals.command(name="list")
@_store_option
@click.option("--all", "show_all", is_flag=True, help="Include decided requests (history).")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
def list_cmd(store_path: Path | None, show_all: bool, as_json: bool, limit: int) -> None:
    """List pending approval requests (oldest first), or all with --all (newest first)."""
    with _open(store_path) as store:
        states = () if show_all else (State.PENDING,)
        reqs = store.list(now=SystemClock().now(), states=states, limit=limit)
        kill = store.kill_switch()
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in reqs], indent=2))
        return
    if kill.engaged:
        click.echo(f"KILL SWITCH ENGAGED by {s(kill.by)}: {s(kill.reason)}")
    if not reqs:
        click.echo("no pending approval requests" if not show_all else "no approval requests")
        return
    for r in reqs:
        click.echo(_line(r))


@approvals.command(name="show")
@click.argument("request_id")
@_store_option
@click.option("--json", "as_json", is_flag=True)
def show(request_id: str, store_path: Path | None, as_json: bool) -> None:
    """Show one request: the exact call, why it was flagged, its state and history."""
    with _open(store_path) as store:
        r = store.get(request_id, now=SystemClock().now())
        history = store.events(request_id)
    if as_json:
        click.echo(json.dumps({"request": r.model_dump(mode="json"), "history": history}))
        return
    click.echo(_detail(r))
    for h in history:
        click.echo(
            f"  {s(h['at'])}  {s(h['from'])} -> {s(h['to'])} by {s(h['by'])} via "
            f"{s(h['channel'])}{'  ' + s(h['reason']) if h.get('reason') else ''}"
        )


def _decide(
    kind: Literal["approve", "deny"],
    ids: tuple[str, ...],
    store_path: Path | None,
    by: str | None,
    reason: str,
) -> None:
    who = by or getpass.getuser()
    with _open(store_path) as store:
        for rid in ids:
            r = store.transition(
                rid,
                Event(
                    kind=kind,
                    by=who,
                    channel="cli",
                    at=SystemClock().now(),
                    reason=reason,
                ),
            )
            click.echo(f"{s(r.id)}: {r.state.value} by {s(who)}")


@approvals.command(name="approve")
@click.argument("request_ids", nargs=-1, required=True)
@_store_option
@_by_option
@click.option("--reason", default="", help="Recorded with the decision.")
def approve_cmd(
    request_ids: tuple[str, ...], store_path: Path | None, by: str | None, reason: str
) -> None:
    """Approve the exact pending call(s) REQUEST_IDS (each once; review with `show` first)."""
    _decide("approve", request_ids, store_path, by, reason)


@approvals.command(name="deny")
@click.argument("request_ids", nargs=-1, required=True)
@_store_option
@_by_option
@click.option("--reason", default="", help="Recorded with the decision.")
def deny_cmd(
    request_ids: tuple[str, ...], store_path: Path | None, by: str | None, reason: str
) -> None:
    """Deny the pending call(s) REQUEST_IDS."""
    _decide("deny", request_ids, store_path, by, reason)


@approvals.command(name="watch")
@_store_option
@click.option(
    "--timeout",
    "timeout_s",
    type=click.FloatRange(0, 86400),
    default=60.0,
    show_default=True,
    help="Stop watching after this many seconds.",
)
@click.option("--interval", type=click.FloatRange(0.05, 60), default=0.5, show_default=True)
def watch(store_path: Path | None, timeout_s: float, interval: float) -> None:
    """Print each new pending request as it arrives, for at most --timeout seconds."""
    clock = SystemClock()
    deadline = clock.now() + timedelta(seconds=timeout_s)
    seen: set[str] = set()
    stop = threading.Event()
    with _open(store_path) as store:
        rounds = int(timeout_s / interval) + 1
        for _ in range(rounds):
            for r in store.list(now=clock.now(), states=(State.PENDING,)):
                if r.id not in seen:
                    seen.add(r.id)
                    click.echo(_line(r))
                    click.echo(f"    why: {s(r.reason, 300)}")
            remaining = (deadline - clock.now()).total_seconds()
            if remaining <= 0:
                break
            stop.wait(min(interval, remaining))
    click.echo(f"watch ended ({len(seen)} pending seen)")


@click.command(name="kill")
@_store_option
@_by_option
@click.option("--lift", is_flag=True, help="Lift the kill switch (an explicit operator action).")
@click.option("--reason", required=True, help="Why (recorded with the switch).")
@alert_options
def kill(
    *,
    store_path: Path | None,
    by: str | None,
    lift: bool,
    reason: str,
    alert_command: str | None,
    alert_webhook: str | None,
) -> None:
    """Kill switch: deny every pending and new sensitive call until lifted with --lift."""
    from stockade.gates._alerting_sink import alert_hooks, with_alerts

    who = by or getpass.getuser()
    hooks = alert_hooks(alert_command, alert_webhook)
    clock = SystemClock()
    # With alert hooks the audit log is created if absent: the alert rides on its event.
    with (
        _audit_log(create=bool(hooks)) as log,
        ApprovalStore(
            store_path or paths.run_store(), audit=with_alerts(log, hooks, clock)
        ) as store,
    ):
        cancelled = store.set_kill(engaged=not lift, by=who, reason=reason, now=clock.now())
    if lift:
        click.echo(f"kill switch lifted by {s(who)}: {s(reason)}")
        return
    click.echo(f"kill switch ENGAGED by {s(who)}: {s(reason)}")
    click.echo(f"cancelled {len(cancelled)} open approval request(s)")
    for rid in cancelled:
        click.echo(f"  {s(rid)}")


@approvals.command(name="add-operator")
@click.argument("operator")
@click.option(
    "--secrets",
    "secret_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Secret store directory. Default: $STOCKADE_HOME/secrets",
)
def add_operator(operator: str, secret_dir: Path | None) -> None:
    """Create (or replace) OPERATOR's login token for the approval page; printed once."""
    where = secret_dir or paths.secret_dir()
    where.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = DirectorySecretStore.create(where)
    token = secrets.token_urlsafe(32)
    store.put(operator_secret_name(operator), token.encode())
    click.echo(
        f"operator {s(operator)}: token (shown once, stored as secret "
        f"{operator_secret_name(operator)}):"
    )
    click.echo(token)


@approvals.command(name="serve")
@_store_option
@click.option(
    "--secrets",
    "secret_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Secret store directory. Default: $STOCKADE_HOME/secrets",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address only.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True)
def serve(store_path: Path | None, secret_dir: Path | None, host: str, port: int) -> None:
    """Serve the approval web page on a loopback address until interrupted."""
    sock = loopback_socket(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    names = (f"{shown}:{bound}",) + ((f"localhost:{bound}",) if host == "127.0.0.1" else ())
    with _open(store_path) as store:
        app = approval_app(
            store,
            DirectorySecretStore(secret_dir or paths.secret_dir()),
            SystemClock(),
            hosts=names,
        )
        click.echo(f"approval page on http://{names[0]}/ (Ctrl-C to stop)", err=True)
        PageServer(app, sock).run()


@approvals.command(name="stats")
@_store_option
@click.option("--json", "as_json", is_flag=True)
def stats(store_path: Path | None, as_json: bool) -> None:
    """Approval, denial and expiry counts and decision latency per category."""
    with _open(store_path) as store:
        m = metrics(store.list(now=SystemClock().now(), limit=1_000_000))
    if as_json:
        click.echo(json.dumps({c.value: v.model_dump(mode="json") for c, v in m.items()}))
        return
    click.echo(
        f"{'CATEGORY':<20} {'REQ':>5} {'PEND':>5} {'OK':>5} {'USED':>5} {'DENY':>5} "
        f"{'EXP':>5} {'CANC':>5}  LATENCY mean/max s"
    )
    for c, v in m.items():
        lat = (
            f"{v.latency_mean_s:.1f}/{v.latency_max_s:.1f}"
            if v.latency_mean_s is not None and v.latency_max_s is not None
            else "-"
        )
        click.echo(
            f"{c.value:<20} {v.requested:>5} {v.pending:>5} {v.approved:>5} "
            f"{v.consumed:>5} {v.denied:>5} {v.expired:>5} {v.cancelled:>5}  {lat}"
        )


@approvals.command(name="remember")
@click.argument("request_id")
@_store_option
@_by_option
@click.option(
    "--domain",
    default=None,
    help="Cover later calls to exactly this host (one the "
    "decided call named). Without it: exactly the same arguments.",
)
@click.option(
    "--scope",
    type=click.Choice(["session", "client", "server"]),
    default="client",
    show_default=True,
)
@click.option(
    "--ttl",
    "ttl_s",
    type=click.FloatRange(1, 30 * 86400),
    default=3600.0,
    show_default=True,
    help="Seconds until the remembered decision lapses (max 30 days).",
)
def remember(
    request_id: str,
    store_path: Path | None,
    *,
    by: str | None,
    domain: str | None,
    scope: str,
    ttl_s: float,
) -> None:
    """Remember the operator's decision on REQUEST_ID for later calls no broader than it."""
    who = by or getpass.getuser()
    now = SystemClock().now()
    with _open(store_path) as store:
        req = store.get(request_id, now=now)
        rem = remember_from(
            req,
            remembered_id="rem_" + secrets.token_hex(6),
            pattern_kind="domain" if domain else "arguments",
            domain=domain,
            scope=scope,  # type: ignore[arg-type]
            by=who,
            now=now,
            ttl_s=ttl_s,
        )
        store.remember(rem)
    click.echo(_rem_line(rem))


def _rem_line(r: Remembered) -> str:
    state = "revoked" if r.revoked_at else f"until {r.expires_at:%Y-%m-%d %H:%M:%S}Z"
    return (
        f"{s(r.id)}  {r.verdict:<5}  {s(r.server, 30)}__{s(r.tool, 40)}  {r.category.value}  "
        f"{r.pattern_kind}={s(r.pattern, 80)}  scope {r.scope}"
        f"{'=' + s(r.scope_value, 40) if r.scope_value else ''}  by {s(r.created_by)}  {state}"
    )


@approvals.command(name="remembered")
@_store_option
@click.option("--all", "show_all", is_flag=True, help="Include revoked and lapsed ones.")
def remembered_cmd(store_path: Path | None, show_all: bool) -> None:
    """List remembered decisions."""
    with _open(store_path) as store:
        rems = store.remembered(now=SystemClock().now(), include_inactive=show_all)
    if not rems:
        click.echo("no remembered decisions")
    for r in rems:
        click.echo(_rem_line(r))


@approvals.command(name="forget")
@click.argument("remembered_id")
@_store_option
@_by_option
def forget(remembered_id: str, store_path: Path | None, by: str | None) -> None:
    """Revoke a remembered decision."""
    with _open(store_path) as store:
        r = store.forget(remembered_id, by=by or getpass.getuser(), now=SystemClock().now())
    click.echo(_rem_line(r))


@click.command(name="intercept")
@click.argument("when", type=click.Choice(["before", "after"]))
@click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Policy file (required for before).",
)
@click.option("--server", default=None, help="The policy server this gateway's tools belong to.")
@click.option(
    "--client",
    default="docker-mcp-gateway",
    show_default=True,
    help="Client identity the policy sees.",
)
@click.option(
    "--approver",
    type=click.Choice(["store", "none"]),
    default="store",
    show_default=True,
    help="store: wait for an operator (CLI or web page); none: deny.",
)
@_store_option
def intercept(
    when: str,
    *,
    policy_file: Path | None,
    server: str | None,
    client: str,
    approver: str,
    store_path: Path | None,
) -> None:
    """Docker MCP Gateway exec interceptor: --interceptor 'before:exec:stockade intercept before
    --policy P --server S' (and 'after:exec:stockade intercept after'). See docs/approvals.md."""
    payload = sys.stdin.buffer.read(MAX_PAYLOAD + 1)
    if when == "after":
        sys.stdout.buffer.write(after(payload))
        return
    if policy_file is None or server is None:
        sys.stdout.buffer.write(
            error_result("stockade interceptor: --policy and --server are required for before")
        )
        return
    clock = SystemClock()
    try:
        with _audit_log() as log:
            policy = load_policy(policy_file)
            store = ApprovalStore(store_path or paths.run_store(), audit=log)
            ask = (
                StoreApprover(
                    store,
                    clock,
                    policy_hash=policy_file_hash(policy_file),
                    timeout_for=policy.doc.approvals.timeout_for,
                )
                if approver == "store"
                else None
            )

            def decide_call(call: ToolCall) -> Decision:
                decision, _ = decide(policy, call, DecisionContext(now=clock.now().timestamp()))
                return decision

            out, decision = before(
                payload, server=server, client=client, decide=decide_call, approver=ask
            )
            if log is not None:
                log.append(
                    "intercept.call",
                    {
                        "server": server,
                        "kind": decision.kind,
                        "reason": decision.reason,
                        "rule": decision.rule,
                    },
                )
    except StockadeError as e:  # the CLI boundary: answer with a deny result, never proceed
        out = error_result(f"stockade interceptor failed: {e.what}")
    sys.stdout.buffer.write(out)


@approvals.command(name="escalations")
@_store_option
def escalations(store_path: Path | None) -> None:
    """Sessions raised to "approval required for everything", and why."""
    with _open(store_path) as store:
        found = store.escalated_sessions(now=SystemClock().now())
    if not found:
        click.echo("no escalated sessions")
    for sess, why in found.items():
        click.echo(f"{s(sess, 80)}  {s(why, 300)}")


@approvals.command(name="clear")
@click.argument("session")
@_store_option
@_by_option
@click.option("--reason", required=True, help="Why the session may proceed normally again.")
def clear(session: str, store_path: Path | None, by: str | None, reason: str) -> None:
    """Clear SESSION's escalation (only requests after this count towards a new one)."""
    who = by or getpass.getuser()
    with _open(store_path) as store:
        store.clear_escalation(session, by=who, reason=reason, now=SystemClock().now())
    click.echo(f"session {s(session, 80)} cleared by {s(who)}")
