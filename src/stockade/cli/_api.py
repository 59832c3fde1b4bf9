"""``stockade api``: serve the HTTP control API behind mutual TLS, issue run tokens."""

from __future__ import annotations

import os
import secrets
import threading
from datetime import timedelta
from pathlib import Path

import click
from cryptography import x509

from stockade import paths
from stockade.api import (
    ApiServer,
    CertificateRotation,
    ControlPlane,
    Metrics,
    ReadinessCheck,
    RecordingStopper,
    StoreRevocations,
    audit_ready,
    build_app,
    gvisor_ready,
    listen,
    store_ready,
)
from stockade.approvals import ApprovalStore
from stockade.errors import IdentityError, StockadeError, UsageError
from stockade.gates import AuditTarget
from stockade.identity import (
    CA_CERT_FILE,
    CRL_FILE,
    CertificateAuthority,
    CommandRenewer,
    CrlWatcher,
    DirectoryRenewer,
    ExternalRenewer,
    TokenAuthority,
    server_context,
)
from stockade.models import SystemClock
from stockade.opa import OpaDelegate, OpaInput, OpaServerEvaluator, RegoEvaluator
from stockade.policy import load_policy
from stockade.secrets import DirectorySecretStore
from stockade.store import RunStore
from stockade.textsafe import safe_text

__all__ = ["api", "load_token_key", "opa"]

TOKEN_KEY_FILE = "run-token.key"  # noqa: S105  # nosec B105 - a file name, not a secret


def load_token_key(key_dir: Path, *, create: bool) -> bytes:
    """The HMAC key for run tokens (32 random bytes, file 0600); created on first use."""
    path = key_dir / TOKEN_KEY_FILE
    if create and not path.exists():
        key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    try:
        st = path.lstat()
        if st.st_mode & 0o077:
            raise IdentityError(
                f"the run-token key {path} is readable by others", f"chmod 600 {path}"
            )
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError as e:
        raise IdentityError(f"no run-token key at {path}", "start stockade api serve once") from e
    except (OSError, ValueError) as e:
        raise IdentityError(f"cannot read the run-token key {path}: {e}", "") from e


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}", "check the path") from e


@click.group(name="api")
def api() -> None:
    """The HTTP control API (mutual TLS 1.3; roles per route; see docs/api.md)."""


@api.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8443, show_default=True)
@click.option("--cert", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--key", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--ca-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--check-runtime/--no-check-runtime", default=True, show_default=True)
@click.option(
    "--auto-renew/--no-auto-renew",
    default=True,
    show_default=True,
    help="Renew the served certificate when a third of its life is left (from the CA on this "
    "host, or with --renew-command / --renew-dir when the CA key is elsewhere).",
)
@click.option(
    "--renew-command",
    default=None,
    help="CA elsewhere: run this (no shell) when due; it writes cert.pem and key.pem into "
    "$STOCKADE_RENEW_DIR.",
)
@click.option(
    "--renew-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="CA elsewhere: an external issuer refreshes cert.pem and key.pem here.",
)
@click.option("--opa-url", default=None, help="OPA server (https or loopback) for readiness.")
@click.option(
    "--rego",
    "rego_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rego module evaluated in process (repeat).",
)
def serve(  # noqa: PLR0917 - click passes options positionally
    host: str,
    port: int,
    cert: Path,
    key: Path,
    ca_dir: Path | None,
    policy_file: Path | None,
    store_path: Path | None,
    check_runtime: bool,
    auto_renew: bool,
    renew_command: str | None,
    renew_dir: Path | None,
    opa_url: str | None,
    rego_files: tuple[Path, ...],
) -> None:
    """Serve the control API with CERT/KEY, requiring client certificates from the CA."""
    clock = SystemClock()
    if renew_command and renew_dir:
        raise UsageError("both --renew-command and --renew-dir given", "pick one renewal source")
    renewer: ExternalRenewer | None = None
    if renew_command:
        renewer = CommandRenewer.parse(renew_command)
    elif renew_dir is not None:
        renewer = DirectoryRenewer(renew_dir)
    ca_root = ca_dir or paths.home() / "ca"
    # with an external renewer the CA key never needs to be on this host: its certificate will do
    ca = None if renewer is not None else CertificateAuthority.load(ca_root)
    ca_cert, crl_path = ca_root / CA_CERT_FILE, ca_root / CRL_FILE
    tls = server_context(ca_cert, cert, key, crl_path)
    db = store_path or paths.run_store()

    def open_store() -> RunStore:
        return RunStore.open(db)

    revocations = StoreRevocations(open_store, clock)
    tokens = TokenAuthority(load_token_key(paths.key_dir(), create=True), clock, revocations)
    audit = AuditTarget(paths.audit_log(), paths.key_dir())
    readiness: dict[str, ReadinessCheck] = {
        "store": store_ready(open_store),
        "audit_sink": audit_ready(audit),
    }
    if check_runtime:
        readiness["sandbox_runtime"] = gvisor_ready
    if opa_url and rego_files:
        raise UsageError("both --opa-url and --rego given", "configure one OPA mode")
    if opa_url:
        readiness["opa"] = OpaDelegate(OpaServerEvaluator(opa_url)).probe
    elif rego_files:
        modules = {str(f): _read_text(f) for f in rego_files}
        readiness["opa"] = OpaDelegate(RegoEvaluator(modules)).probe
    loaded = None if policy_file is None else load_policy(policy_file)
    policy_hash = None if loaded is None else loaded.effective_hash
    secret_dir = (
        Path(loaded.secret_store_path)
        if loaded is not None and loaded.secret_store_path
        else paths.secret_dir()
    )
    secret_store = DirectorySecretStore(secret_dir) if secret_dir.exists() else None
    metrics = Metrics()
    try:
        served = x509.load_pem_x509_certificate(cert.read_bytes())
    except (OSError, ValueError) as e:
        raise IdentityError(f"cannot read the server certificate {cert}: {e}", "") from e
    metrics.certificate_expiry(
        served.subject.rfc4514_string(), served.not_valid_after_utc.timestamp()
    )
    cp = ControlPlane(
        open_store=open_store,
        clock=clock,
        stopper=RecordingStopper(open_store, revocations),
        policy_hash=policy_hash,
        audit=audit,
        tokens=tokens,
        approvals=ApprovalStore(db),
        policy=loaded,
        crl=CrlWatcher(ca_cert, crl_path, clock),
        secrets=secret_store,
        readiness=readiness,
    )
    sock = listen(host, port)
    click.echo(f"stockade control API on https://{safe_text(host)}:{sock.getsockname()[1]}")
    server = ApiServer(build_app(cp, metrics), sock, tls)
    if auto_renew:
        rotation = CertificateRotation(
            server, cert, key, ca_cert, clock, crl=crl_path, ca=ca, renewer=renewer, metrics=metrics
        )
        threading.Thread(target=_renew_loop, args=(rotation,), daemon=True).start()
    server.run()


def _renew_loop(rotation: CertificateRotation) -> None:
    stop = threading.Event()
    while not stop.wait(60):
        try:
            serial = rotation.tick()
        except (StockadeError, OSError, ValueError) as e:
            click.echo(safe_text(f"stockade: certificate renewal failed: {e}"), err=True)
            continue
        if serial is not None:
            click.echo(f"renewed the served certificate (serial {serial})")


@api.command(name="token")
@click.argument("run_id")
@click.option("--scope", "scopes", multiple=True, required=True, help="progress | secret:NAME")
@click.option("--minutes", type=click.IntRange(1, 1440), default=15, show_default=True)
@click.option("--store", "store_path", type=click.Path(dir_okay=False, path_type=Path))
def token(run_id: str, scopes: tuple[str, ...], minutes: int, store_path: Path | None) -> None:
    """Issue a run token for RUN_ID (printed once: hand it to the workload, never log it)."""
    db = store_path or paths.run_store()
    with RunStore.open(db) as store:
        store.get(run_id)
    clock = SystemClock()
    revocations = StoreRevocations(lambda: RunStore.open(db), clock)
    authority = TokenAuthority(load_token_key(paths.key_dir(), create=False), clock, revocations)
    if not scopes:
        raise UsageError("no --scope given", "grant at least one scope")
    click.echo(authority.issue(run_id, scopes, ttl=timedelta(minutes=minutes)))


@click.group(name="opa")
def opa() -> None:
    """Try OPA/Rego decisions the way stockade asks them (see docs/api.md, "OPA delegation")."""


@opa.command(name="eval")
@click.option(
    "--rego",
    "rego_files",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Rego module (repeat).",
)
@click.option("--url", default=None, help="OPA server (https or loopback) instead of --rego.")
@click.option(
    "--input",
    "input_file",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="JSON input document (see docs/api.md).",
)
def opa_eval(rego_files: tuple[Path, ...], url: str | None, input_file: Path) -> int:
    """Evaluate data.stockade.<question>.decision for INPUT and print the decision."""
    if bool(rego_files) == bool(url):
        raise UsageError("give --rego FILE... or --url, not both or neither", "")
    try:
        doc = OpaInput.model_validate_json(_read_text(input_file))
    except ValueError as e:
        raise UsageError(f"the input document is not valid: {e}", "see docs/api.md") from e
    evaluator = (
        OpaServerEvaluator(url)
        if url
        else RegoEvaluator({str(f): _read_text(f) for f in rego_files})
    )
    d = OpaDelegate(evaluator).decide(doc)
    click.echo(safe_text(f"{d.kind}: {d.reason} ({d.rule})"))
    return 0 if d.kind == "allow" else 1
