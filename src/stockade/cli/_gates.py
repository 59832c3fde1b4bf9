"""``stockade preflight``, ``stockade postflight RUN``, ``stockade evidence RUN --out DIR``."""

from __future__ import annotations

import getpass
import shlex
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from stockade import paths
from stockade.errors import SecretStoreError
from stockade.gates import (
    AlertError,
    AlertHook,
    AuditTarget,
    Check,
    CommandHook,
    GateInputs,
    WebhookHook,
    apply_policy,
    drill_rollback,
    export_evidence,
    make_alert,
    plan_apply,
    postflight_checks,
    preflight_checks,
    previous_policy_version,
    prune_archives,
    record_policy_version,
    rollback_policy,
    rotate_audit_log,
    run_checks,
)
from stockade.models import SystemClock
from stockade.policy import load_policy
from stockade.sandbox import find_bwrap, find_gvisor
from stockade.secrets import DirectorySecretStore
from stockade.store import RunStore
from stockade.textsafe import safe_text

__all__ = [
    "drill",
    "evidence",
    "policy_apply",
    "policy_rollback",
    "postflight",
    "preflight",
    "retention",
]

_RUNTIMES: dict[str, Callable[[], str]] = {
    "gvisor": lambda: f"runsc {find_gvisor().version}",
    "namespaces": lambda: f"bwrap at {find_bwrap()}",
}

_store_option = click.option(
    "--store", "store_path", type=click.Path(dir_okay=False, path_type=Path), default=None
)
_policy_option = click.option(
    "--policy",
    "policy_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Policy whose secret values are also scanned for (and checked, for preflight).",
)


def _secret_values(policy_file: Path | None) -> tuple[str, ...]:
    if policy_file is None or not paths.secret_dir().exists():
        return ()
    store = DirectorySecretStore(paths.secret_dir())
    out: list[str] = []
    for name in load_policy(policy_file).sensitive_secrets():
        try:
            out.append(store.get(name).decode("utf-8", "replace"))
        except SecretStoreError:
            continue  # not stored: it cannot have leaked from here
    return tuple(out)


def _inputs(
    store_path: Path | None,
    policy_file: Path | None,
    runtimes: tuple[str, ...] = (),
    scan: tuple[Path, ...] = (),
) -> GateInputs:
    db = store_path or paths.run_store()
    return GateInputs(
        open_store=lambda: RunStore.open(db),
        audit=AuditTarget(paths.audit_log(), paths.key_dir()),
        secret_values=_secret_values(policy_file),
        runtimes={r: _RUNTIMES[r] for r in runtimes},
        scan_paths=scan,
    )


_alert_options = [
    click.option(
        "--alert-command", default=None, help="Run this (split on spaces, no shell) on failure."
    ),
    click.option("--alert-webhook", default=None, help="POST the alert here (https or loopback)."),
]


def _with_alerts(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_alert_options):
        f = option(f)
    return f


def _hooks(command: str | None, webhook: str | None) -> list[AlertHook]:
    hooks: list[AlertHook] = []
    if command:
        hooks.append(CommandHook(shlex.split(command)))
    if webhook:
        hooks.append(WebhookHook(webhook))
    return hooks


def _report(gate: str, checks: list[Check], hooks: list[AlertHook]) -> int:
    results = run_checks(checks)
    for r in results:
        click.echo(safe_text(r.line()))
    failed = [r for r in results if not r.ok]
    click.echo(
        f"{'FAIL' if failed else 'PASS'}: {len(results) - len(failed)}/{len(results)} checks passed"
    )
    if failed:
        alert = make_alert(
            "gate_failed",
            gate,
            "; ".join(f"{r.name}: {r.detail}" for r in failed),
            SystemClock(),
            failed=[r.name for r in failed],
        )
        for hook in hooks:
            try:
                hook.fire(alert)
            except AlertError as e:
                click.echo(safe_text(f"FAIL alert hook: {e.what}"), err=True)
    return 1 if failed else 0


@click.command(name="preflight")
@click.option(
    "--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path), required=True
)
@click.option(
    "--runtime",
    "runtimes",
    multiple=True,
    type=click.Choice(sorted(_RUNTIMES)),
    default=("gvisor",),
    show_default=True,
)
@click.option("--scan", multiple=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--record-policy", is_flag=True, help="Record this policy's hash as the approved one."
)
@_store_option
@_with_alerts
def preflight(  # noqa: PLR0917 - click passes options positionally
    policy_file: Path,
    runtimes: tuple[str, ...],
    scan: tuple[Path, ...],
    record_policy: bool,
    store_path: Path | None,
    alert_command: str | None,
    alert_webhook: str | None,
) -> int:
    """Check before serving: policy valid and recorded, runtimes, audit log, no secrets in logs."""
    inputs = _inputs(store_path, policy_file, runtimes, scan)
    if record_policy:
        policy = load_policy(policy_file)
        with inputs.open_store() as store:
            v = record_policy_version(
                store,
                policy.effective_hash,
                by=getpass.getuser(),
                document=policy_file.read_text(),
                at=SystemClock().now(),
            )
        click.echo(f"recorded policy version {v.id}: {v.hash}")
    hooks = _hooks(alert_command, alert_webhook)
    return _report("preflight", preflight_checks(policy_file, inputs), hooks)


@click.command(name="postflight")
@click.argument("run_id")
@_policy_option
@_store_option
@_with_alerts
def postflight(
    run_id: str,
    policy_file: Path | None,
    store_path: Path | None,
    alert_command: str | None,
    alert_webhook: str | None,
) -> int:
    """Check after RUN_ID: audit chain intact and sealed, secret rescan of its trace and events."""
    hooks = _hooks(alert_command, alert_webhook)
    return _report(
        f"postflight {run_id}", postflight_checks(run_id, _inputs(store_path, policy_file)), hooks
    )


@click.command(name="evidence")
@click.argument("run_id")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@_policy_option
@_store_option
def evidence(run_id: str, out: Path, policy_file: Path | None, store_path: Path | None) -> None:
    """Export RUN_ID's receipts (trace, audit log + excerpt, checkpoint, verification) to OUT."""
    manifest = export_evidence(run_id, out, _inputs(store_path, policy_file))
    for name, digest in sorted(manifest.items()):
        click.echo(f"{digest}  {name}")
    click.echo(f"wrote {len(manifest) + 1} files to {safe_text(str(out))}")


def _open(store_path: Path | None) -> RunStore:
    return RunStore.open(store_path or paths.run_store())


@click.command(name="apply")
@click.argument("candidate", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--to", "active", type=click.Path(dir_okay=False, path_type=Path), required=True,
    help="The active policy file to replace.",
)  # fmt: skip
@click.option("--yes", is_flag=True, help="Really apply (the default is a dry run).")
@_store_option
def policy_apply(candidate: Path, active: Path, yes: bool, store_path: Path | None) -> None:
    """Validate CANDIDATE and show what applying it would change; --yes installs and records it."""
    with _open(store_path) as store:
        plan = plan_apply(store, candidate)
        recorded = "none" if plan.recorded is None else plan.recorded.hash
        click.echo(f"recorded: {recorded}\ncandidate: {plan.new_hash}")
        if not plan.changed:
            click.echo("no change: the candidate is the recorded version")
            return
        if not yes:
            click.echo("dry run: nothing applied (add --yes to apply)")
            return
        v = apply_policy(store, candidate, active, by=getpass.getuser(), clock=SystemClock())
    click.echo(f"applied version {v.id}: {v.hash} -> {safe_text(str(active))}")


@click.command(name="rollback")
@click.option("--to", "active", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--yes", is_flag=True, help="Really roll back (the default is a dry run).")
@_store_option
def policy_rollback(active: Path, yes: bool, store_path: Path | None) -> None:
    """Restore the previous recorded policy version into the active file."""
    with _open(store_path) as store:
        previous, _ = previous_policy_version(store)
        click.echo(f"previous version {previous.id}: {previous.hash} ({previous.applied_at})")
        if not yes:
            click.echo("dry run: nothing restored (add --yes to roll back)")
            return
        v = rollback_policy(store, active, by=getpass.getuser(), clock=SystemClock())
    click.echo(f"rolled back: version {v.id} is {v.hash} -> {safe_text(str(active))}")


@click.group(name="drill")
def drill() -> None:
    """Recovery drills."""


@drill.command(name="rollback")
@click.option("--policy", "active", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--candidate", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--rto-seconds", type=click.FloatRange(min=0.0), default=60.0, show_default=True)
@_store_option
def drill_rollback_cmd(
    active: Path, candidate: Path, rto_seconds: float, store_path: Path | None
) -> int:
    """Apply CANDIDATE over the active policy, roll it back, and time it against the target."""
    with _open(store_path) as store:
        r = drill_rollback(
            store, candidate, active, by=getpass.getuser(), clock=SystemClock(),
            rto_seconds=rto_seconds,
        )  # fmt: skip
    verdict = "PASS" if r.ok else "FAIL"
    click.echo(
        f"{verdict} rollback drill: {r.seconds:.3f} s (target {r.rto_seconds:g} s), "
        f"policy restored to {r.restored_hash}"
    )
    return 0 if r.ok else 1


def _archive_dir(archive: Path | None) -> Path:
    return archive or paths.audit_log().parent / "archive"


_archive_option = click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Archive directory (default: beside the audit log, archive/).",
)


@click.group(name="retention")
def retention() -> None:
    """Audit retention: sealed archives of rotated logs, pruned after the retention period."""


@retention.command(name="rotate")
@_archive_option
def retention_rotate(archive: Path | None) -> None:
    """Seal the audit log, move it into the archive, and start a new chain linked to it."""
    seal = rotate_audit_log(
        paths.audit_log(), paths.key_dir(), _archive_dir(archive), SystemClock()
    )
    click.echo(
        f"archived {seal.events} events as {seal.file} (sha256 {seal.sha256}); "
        f"seal: {seal.file}.seal.json"
    )


@retention.command(name="prune")
@click.option("--days", type=click.IntRange(min=1), required=True, help="Retention period.")
@_archive_option
def retention_prune(days: int, archive: Path | None) -> None:
    """Delete archives older than --days (with their seals)."""
    removed = prune_archives(_archive_dir(archive), timedelta(days=days), SystemClock())
    for name in removed:
        click.echo(f"removed {name}")
    click.echo(f"{len(removed)} archive(s) past {days} days removed")
