"""``stockade runs`` and ``stockade trace``: read the run store."""

from __future__ import annotations

import json
from pathlib import Path

import click

from stockade import paths
from stockade.models import RunStatus
from stockade.store import RunStore, RunTrace
from stockade.textsafe import safe_text

__all__ = ["runs", "trace"]

_store_option = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Run store (SQLite). Default: $STOCKADE_HOME/runs.db",
)


@click.command(name="runs")
@_store_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--status", type=click.Choice([s.value for s in RunStatus]), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of run records.")
def runs(store_path: Path | None, limit: int, status: str | None, as_json: bool) -> None:
    """List recorded runs, newest first."""
    with RunStore.open(store_path or paths.run_store()) as store:
        records = store.list(limit=limit, status=RunStatus(status) if status else None)
    if as_json:
        click.echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    if not records:
        click.echo("no runs recorded")
        return
    click.echo(f"{'RUN ID':<36}  {'STATUS':<8}  {'REASON':<18}  {'BACKEND':<10}  WORKLOAD")
    for r in records:
        click.echo(
            f"{safe_text(r.run_id, single_line=True):<36}  {r.status.value:<8}  "
            f"{(r.end_reason.value if r.end_reason else '-'):<18}  "
            f"{safe_text(r.backend or '-', single_line=True):<10}  "
            f"{safe_text(r.workload, single_line=True, limit=80)}"
        )


@click.command(name="trace")
@click.argument("run_id")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="Print the trace as JSON.")
def trace(run_id: str, store_path: Path | None, as_json: bool) -> None:
    """Print the run trace of RUN_ID: evidence, decisions, spec, network, status."""
    with RunStore.open(store_path or paths.run_store()) as store:
        t = store.trace(run_id)
    if as_json:
        click.echo(t.model_dump_json(indent=2))
        return
    click.echo(render_trace(t))


def _kv(data: dict[str, object], limit: int = 2000) -> str:
    return safe_text(json.dumps(data, sort_keys=True, default=str), single_line=True, limit=limit)


def s(value: object) -> str:
    return safe_text(str(value), single_line=True)


def render_trace(t: RunTrace) -> str:
    """Human-readable trace; every untrusted string goes through safe_text."""
    r = t.run
    lines = [
        f"run        {s(r.run_id)}",
        f"workload   {s(r.workload)}  ({s(r.kind)}{', server ' + s(r.server) if r.server else ''})",
        f"backend    {s(r.backend or '-')}"
        + ("   ** gVisor guarantee WAIVED for this run **" if t.gvisor_waived else ""),
        f"policy     {s(r.policy_hash or '-')}",
        f"image      {s(r.image_digest or '-')}",
        f"network    {_kv(r.network_profile)}",
        f"spec       {_kv(r.spec)}",
        f"status     {r.status.value}"
        + (f" ({r.end_reason.value})" if r.end_reason else "")
        + (f" exit={r.exit_code}" if r.exit_code is not None else "")
        + (f" signal={r.signal}" if r.signal is not None else ""),
        f"created    {r.created_at.isoformat()}",
        f"started    {r.started_at.isoformat() if r.started_at else '-'}",
        f"ended      {r.ended_at.isoformat() if r.ended_at else '-'}",
    ]
    for title, items in (
        ("verification", t.verification),
        ("decisions", t.decisions),
        ("tool calls", t.tool_calls),
        ("approvals", t.approvals),
        ("events", t.events),
    ):
        lines.append(f"{title} ({len(items)})")
        lines.extend(f"  {s(i.ts)}  {s(i.kind)}  {_kv(i.data)}" for i in items)
    return "\n".join(lines)
