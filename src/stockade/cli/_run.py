"""``stockade run``: run a command in the local sandbox, stream its output, pass its exit code."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess  # nosec B404
import sys
import threading
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import IO, Any

import click

from stockade import paths
from stockade.errors import SandboxError, StockadeError, UsageError
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
@click.option("--image", "image_ref", help="Verify REF against the policy and run it on gVisor.")
@click.option("--plain-http", "plain_http", multiple=True, help="Loopback registry host:port.")
@click.option(
    "--backend",
    type=click.Choice(["local", "kubernetes"]),
    default="local",
    show_default=True,
    help="kubernetes: the server's verified image as a gVisor Pod (see docs/kubernetes.md).",
)
@click.option("--egress-proxy-ip", default=None, help="kubernetes: the egress proxy's ClusterIP.")
@click.option(
    "--egress-proxy-image",
    default=None,
    help="kubernetes: stockade's proxy image (@sha256); overrides kubernetes.egress_proxy_image.",
)
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
    image_ref: str | None,
    plain_http: tuple[str, ...],
    backend: str,
    egress_proxy_ip: str | None,
    egress_proxy_image: str | None,
    command: tuple[str, ...],
) -> None:
    """Run COMMAND in a sandbox (gVisor by default): stockade run [OPTIONS] -- CMD ARGS..."""
    if backend == "kubernetes":
        from ._k8s import run_on_kubernetes

        local = (runtime, network, domains, memory_mb, cpu_seconds, pids, ro, rw)
        if policy_file is None or server is None or command or image_ref or any(local):
            raise UsageError(
                "--backend kubernetes runs a policy server's image with the policy's limits",
                "pass only --policy FILE --server NAME [-i] [--timeout S] [--store F] "
                "[--plain-http] [--egress-proxy-ip IP] [--egress-proxy-image REF@sha256:...]",
            )
        code = run_on_kubernetes(
            str(policy_file),
            server,
            egress_proxy_ip=egress_proxy_ip,
            egress_proxy_image=egress_proxy_image,
            timeout_s=timeout_s,
            plain_http=plain_http,
            store=store_path,
            interactive=interactive,
        )
        sys.exit(code)
    if egress_proxy_ip is not None or egress_proxy_image is not None:
        raise UsageError(
            "--egress-proxy-ip/--egress-proxy-image need --backend kubernetes (a local run's "
            "proxy is its own)",
            "add --backend kubernetes, or drop them",
        )
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
    from stockade.store import EgressCounter, RunStore

    if server is not None and policy_file is None:
        raise UsageError("--server needs --policy", "pass --policy FILE --server NAME")
    if image_ref is None and (policy_file is None) != (server is None):
        raise UsageError("--policy and --server go together", "pass both, or neither")
    if network and domains:
        raise UsageError("--network none and --allow-domain exclude each other", "pick one")
    limits = PolicyLimits()
    secret_dir: Path | None = None
    policy_hash = ""
    policy: Any = None
    if policy_file is not None and server is None:
        from stockade.policy import load_policy

        policy = load_policy(policy_file)
        policy_hash = policy.effective_hash
    if policy_file is not None and server is not None:
        from stockade.policy import load_policy

        policy = load_policy(policy_file)
        limits = policy_limits(policy, server)
        policy_hash = policy.effective_hash
        entry = policy.server(server)
        if entry.image is not None and image_ref is None:
            image_ref = entry.image
        if image_ref is not None and entry.image != image_ref:
            raise UsageError(
                f"server {server!r} runs {safe_text(str(entry.image))!r}, not "
                f"{safe_text(image_ref)!r}",
                "run the server's own image, or drop --server",
            )
        if not command and entry.command:
            command = entry.command
        if policy.secret_store_path:
            secret_dir = Path(policy.secret_store_path)
    if not command and image_ref is None:
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
    clock = SystemClock()
    evidence: tuple[tuple[str, dict[str, Any]], ...] = ()
    workload = " ".join(command)
    if image_ref is not None:
        spec, evidence, workload = _image_spec(
            image_ref,
            policy,
            server,
            tuple(command),
            limits,
            overrides,
            plain_http=plain_http,
            store_path=store_path,
            clock=clock,
            kind=limits.kind,
            policy_hash=policy_hash,
        )
    else:
        spec = build_spec(tuple(command), limits, overrides)
    if spec.runtime == Runtime.NAMESPACES:
        click.echo("stockade: warning: runtime namespaces waives the gVisor guarantee", err=True)
    state = paths.home() / "sandbox"
    state.mkdir(parents=True, exist_ok=True, mode=0o700)
    secrets: Any = None
    if spec.secrets:
        from stockade.secrets import DirectorySecretStore

        secrets = DirectorySecretStore(secret_dir or paths.secret_dir())
    with (
        RunStore.open(store_path or paths.run_store()) as store,
        AuditLog.open(paths.audit_log(), paths.key_dir()) as audit,
    ):
        runsc: str | None = None
        with contextlib.suppress(SandboxError):
            runsc = find_gvisor().runsc if spec.runtime == Runtime.GVISOR else None
        for lost in reap_leftovers(state, runsc, store):
            click.echo(f"stockade: cleaned leftovers of crashed run {lost} (marked lost)", err=True)
        _authorise(policy, spec, store, audit, clock, server or "", workload, limits.kind)
        db = store_path or paths.run_store()
        handle = start_recorded(
            spec,
            state=state,
            clock=clock,
            store=store,
            audit=EgressCounter(audit, lambda: RunStore.open(db), clock),  # blocked-egress metric
            secrets=secrets,
            workload=workload,
            kind=limits.kind,
            server=server,
            policy_hash=policy_hash,
            stdin=None if interactive else subprocess.DEVNULL,
            protected=(str(paths.home()), str(paths.key_dir())),
            evidence=evidence,
        )
        click.echo(f"stockade: run {handle.run_id} ({spec.runtime.value})", err=True)
        # a stop requested through the control API (`stop_requested` evidence) ends the run
        from stockade.api import StoreStopCheck

        handle.sandbox.watch_stop(StoreStopCheck(lambda: RunStore.open(db), handle.run_id))

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


def _image_spec(  # noqa: PLR0917 (the run's whole context, passed once)
    image_ref: str,
    policy: Any,
    server: str | None,
    command: tuple[str, ...],
    limits: Any,
    overrides: Any,
    *,
    plain_http: tuple[str, ...],
    store_path: Path | None,
    clock: SystemClock,
    kind: str,
    policy_hash: str,
) -> tuple[Any, tuple[tuple[str, dict[str, Any]], ...], str]:
    """Every supply-chain step for an image run; any failure is recorded as a refused run.

    Returns the spec (gVisor, the verified rootfs read-only, the verified digest), the evidence
    to record with the run, and the workload name (the digest-pinned reference).
    """
    from stockade.audit import AuditLog
    from stockade.sandbox import build_spec, check_image_spec, record_refused
    from stockade.store import RunStore
    from stockade.supplychain import (
        RegistryClient,
        image_evidence,
        image_gate,
        prepare_image,
    )

    images = paths.home() / "images"
    try:
        if policy is None:
            raise UsageError(
                "an image run needs a policy (its registries and signature rules): got none",
                "pass --policy FILE (and --server NAME for a server's limits and rules)",
            )
        gate = image_gate(policy, server)
        with RegistryClient(plain_http=plain_http) as client:
            prepared = prepare_image(
                client,
                image_ref,
                gate,
                store_root=images / "oci",
                cache=images / "rootfs",
                clock=clock,
                command=command,
            )
        spec = build_spec(
            prepared.argv,
            limits,
            replace(overrides, cwd=prepared.workdir),
            image_digest=prepared.verified.pinned.digest,
            rootfs=prepared.rootfs,
            image_env=prepared.env,
            image_user=prepared.user,
        )
        check_image_spec(spec)
    except StockadeError as e:
        with (
            RunStore.open(store_path or paths.run_store()) as store,
            AuditLog.open(paths.audit_log(), paths.key_dir()) as audit,
        ):
            run_id = record_refused(
                e, clock=clock, store=store, audit=audit, workload=image_ref, kind=kind,
                server=server, policy_hash=policy_hash,
            )  # fmt: skip
        click.echo(f"stockade: run {run_id} refused", err=True)
        raise
    evidence = image_evidence(prepared, image_ref, clock.now().isoformat())
    click.echo(
        f"stockade: verified {safe_text(prepared.verified.reference, single_line=True)} "
        f"(rule {safe_text(prepared.verified.evidence.rule)}, "
        f"registry rule {safe_text(prepared.verified.allowed_by)})",
        err=True,
    )
    return spec, evidence, prepared.verified.reference


def _authorise(  # noqa: PLR0917 (the run's context, passed once)
    policy: Any,
    spec: Any,
    store: Any,
    audit: Any,
    clock: Any,
    server: str,
    workload: str,
    kind: str,
) -> None:
    """The policy's delegated ``task`` and ``secret_access`` questions (docs/policy.md §5a); a
    refusal is recorded as a refused run and ends the command."""
    if policy is None:
        return
    from stockade.opa import OpaDenied, Questions, authorise_run, local_client
    from stockade.sandbox import record_refused

    questions = Questions.for_policy(policy, audit=audit, only=("task", "secret_access"))
    if questions is None:
        return
    try:
        authorise_run(
            questions, client=local_client(), server=server, spec=spec, workload=workload, kind=kind
        )
    except OpaDenied as e:
        record_refused(
            e, clock=clock, store=store, audit=audit, workload=workload, kind=kind,
            server=server or None, policy_hash=policy.effective_hash,
            image_digest=spec.image_digest,
        )  # fmt: skip
        raise
