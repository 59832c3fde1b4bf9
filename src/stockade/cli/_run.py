"""``stockade run``: run a command in the local sandbox, stream its output, pass its exit code."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess  # nosec B404
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click

from stockade import paths
from stockade.errors import SandboxError, UsageError
from stockade.models import NetworkProfile, Runtime, SystemClock
from stockade.textsafe import safe_text

__all__ = ["run"]


def _pump(src: IO[bytes], dst: IO[bytes], sanitize: bool) -> None:
    """Copy workload output; on a terminal, neutralise control sequences first."""
    for raw in iter(lambda: src.read1(65536), b""):  # type: ignore[attr-defined]
        chunk = safe_text(raw.decode("utf-8", errors="replace")).encode() if sanitize else raw
        with contextlib.suppress(OSError):
            dst.write(chunk)
            dst.flush()


@click.command(name="run", context_settings={"ignore_unknown_options": False})
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--server", help="Policy server entry whose limits and command apply.")
@click.option("--runtime", type=click.Choice([Runtime.GVISOR.value, Runtime.NAMESPACES.value]))
@click.option("--network", type=click.Choice(["none"]), help="Tighten to no network.")
@click.option("--allow-domain", "domains", multiple=True, help="Egress domain (tightens only).")
@click.option("--memory-mb", type=click.IntRange(min=1))
@click.option("--cpu-seconds", type=click.FloatRange(min=0, min_open=True))
@click.option("--pids", type=click.IntRange(min=1))
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True))
@click.option("--ro", "ro", multiple=True, help="Host path bound read-only (same path inside).")
@click.option("--rw", "rw", multiple=True, help="Host path bound read-write (same path inside).")
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-i", "--interactive", is_flag=True, help="Pass this terminal's stdin through.")
@click.option("--json", "as_json", is_flag=True, help="End with the run record as JSON.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
def run(  # noqa: PLR0917 (click passes every option positionally by name)
    policy_file: Path | None,
    server: str | None,
    runtime: str | None,
    network: str | None,
    domains: tuple[str, ...],
    memory_mb: int | None,
    cpu_seconds: float | None,
    pids: int | None,
    timeout_s: float | None,
    ro: tuple[str, ...],
    rw: tuple[str, ...],
    store_path: Path | None,
    interactive: bool,
    as_json: bool,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND in a sandbox (gVisor by default): stockade run [OPTIONS] -- CMD ARGS..."""
    from stockade.audit import AuditLog
    from stockade.sandbox import (
        Overrides,
        PolicyLimits,
        build_spec,
        find_gvisor,
        policy_limits,
        reap_leftovers,
        start_recorded,
    )
    from stockade.store import RunStore

    if (policy_file is None) != (server is None):
        raise UsageError("--policy and --server go together", "pass both, or neither")
    if network and domains:
        raise UsageError("--network none and --allow-domain exclude each other", "pick one")
    limits = PolicyLimits()
    secret_dir: Path | None = None
    policy_hash = ""
    if policy_file is not None and server is not None:
        from stockade.policy import load_policy

        policy = load_policy(policy_file)
        limits = policy_limits(policy, server)
        policy_hash = policy.effective_hash
        entry = policy.server(server)
        if entry.image is not None:
            raise SandboxError(
                f"server {server!r} runs an image; the local runner runs host commands only",
                "use a command: entry, or a backend that runs images",
            )
        if not command and entry.command:
            command = entry.command
        if policy.secret_store_path:
            secret_dir = Path(policy.secret_store_path)
    if not command:
        raise UsageError("no command given", "stockade run [OPTIONS] -- CMD ARGS...")
    net: NetworkProfile | None = None
    if network == "none":
        net = NetworkProfile()
    elif domains:
        net = NetworkProfile(mode="allowlist", domains=tuple(domains))
    overrides = Overrides(
        runtime=Runtime(runtime) if runtime else None,
        cpu_seconds=cpu_seconds,
        memory_mb=memory_mb,
        pids=pids,
        timeout_s=timeout_s,
        network=net,
        ro=ro,
        rw=rw,
    )
    spec = build_spec(tuple(command), limits, overrides)
    if spec.runtime == Runtime.NAMESPACES:
        click.echo("stockade: warning: runtime namespaces waives the gVisor guarantee", err=True)
    state = paths.home() / "sandbox"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets: Any = None
    if spec.secrets:
        from stockade.secrets import DirectorySecretStore

        secrets = DirectorySecretStore(secret_dir or paths.secret_dir())
    clock = SystemClock()
    with (
        RunStore.open(store_path or paths.run_store()) as store,
        AuditLog.open(paths.audit_log(), paths.key_dir()) as audit,
    ):
        runsc: str | None = None
        with contextlib.suppress(SandboxError):
            runsc = find_gvisor().runsc if spec.runtime == Runtime.GVISOR else None
        for lost in reap_leftovers(state, runsc, store):
            click.echo(f"stockade: cleaned leftovers of crashed run {lost} (marked lost)", err=True)
        handle = start_recorded(
            spec,
            state=state,
            clock=clock,
            store=store,
            audit=audit,
            secrets=secrets,
            workload=" ".join(command),
            kind=limits.kind,
            server=server,
            policy_hash=policy_hash,
            stdin=None if interactive else subprocess.DEVNULL,
            protected=(str(paths.home()), str(paths.key_dir())),
        )
        click.echo(f"stockade: run {handle.run_id} ({spec.runtime.value})", err=True)

        def _stop(signum: int, frame: FrameType | None) -> None:
            handle.kill()

        old = {s: signal.signal(s, _stop) for s in (signal.SIGINT, signal.SIGTERM)}
        pumps = []
        for src, dst in ((handle.sandbox.stdout, sys.stdout), (handle.sandbox.stderr, sys.stderr)):
            if src is None:
                continue
            t = threading.Thread(target=_pump, args=(src, dst.buffer, dst.isatty()), daemon=True)
            t.start()
            pumps.append(t)
        try:
            outcome, record = handle.wait()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        for t in pumps:
            t.join(timeout=5)
    click.echo(
        f"stockade: run {outcome.run_id} ended: {outcome.end_reason.value} "
        f"(exit {outcome.exit_code}, signal {outcome.signal}, cpu {outcome.cpu_seconds}s)",
        err=True,
    )
    if as_json and record is not None:
        click.echo(json.dumps(record.model_dump(mode="json"), indent=2))
    code = outcome.exit_code if outcome.exit_code is not None else 128 + (outcome.signal or 9)
    sys.stdout.flush()
    sys.exit(code)
