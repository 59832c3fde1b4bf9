"""``stockade audit``: create keys, append, verify, export the signed head, show, repair."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from stockade import paths
from stockade.audit import (
    PUBLIC_KEY_FILE,
    AuditLog,
    Checkpoint,
    VerifyReport,
    load_hmac_key,
    load_keys,
    load_public_key,
    parse_expected_head,
    parse_line,
    verify_file,
)
from stockade.errors import AuditVerifyError, InputError, UsageError
from stockade.textsafe import safe_text

__all__ = ["audit"]

_dir_option = click.option(
    "--dir",
    "home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Home holding audit/audit.jsonl and keys/. Default: $STOCKADE_HOME or ~/.stockade",
)
_file_arg = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))


def _locations(home: Path | None) -> tuple[Path, Path]:
    if home is None:
        return paths.audit_log(), paths.key_dir()
    return home / "audit" / "audit.jsonl", home / "keys"


def _echo(text: str, *, err: bool = False) -> None:
    click.echo(safe_text(text), err=err)


@click.group(name="audit")
def audit() -> None:
    """The tamper-evident audit log (hash chain + HMAC + signed checkpoints)."""


@audit.command(name="init")
@_dir_option
def init(home: Path | None) -> None:
    """Create the audit keys and log (keys only if the log does not exist yet)."""
    log_path, key_dir = _locations(home)
    fresh = not log_path.exists()
    with AuditLog.open(log_path, key_dir) as log:
        if fresh:
            log.append("audit-init", {"key_id": log.keys.key_id})
        pem = log.keys.public_pem().decode()
        kid = log.keys.key_id
    _echo(f"audit log: {log_path} ({'created' if fresh else 'already present'})", err=True)
    _echo(f"keys: {key_dir} (signing key {kid})", err=True)
    _echo("public key below: store it away from this host, verify with --pubkey", err=True)
    click.echo(pem, nl=False)


@audit.command(name="pubkey")
@_dir_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the PEM to this file instead of stdout.",
)
def pubkey(home: Path | None, out: Path | None) -> None:
    """Print (export) the public key that verifies this host's checkpoints."""
    _, key_dir = _locations(home)
    pem = load_keys(key_dir).public_pem()
    if out is None:
        click.echo(pem.decode(), nl=False)
    else:
        try:
            out.write_bytes(pem)
        except OSError as e:
            raise InputError(f"cannot write {out}: {e.strerror}", "pick a writable path") from e
        _echo(f"wrote {out}", err=True)


@audit.command(name="append")
@_dir_option
@click.option("--type", "type_", required=True, help="Event type.")
@click.option("--data", default="{}", show_default=True, help="Event data: a JSON object.")
@click.option("--run-id", default=None)
@click.option("--session-id", default=None)
@click.option("--secret", "secrets", multiple=True, help="A value to redact (repeatable).")
@click.option("--no-seal", is_flag=True, help="Do not write a checkpoint after appending.")
def append(
    *,
    home: Path | None,
    type_: str,
    data: str,
    run_id: str | None,
    session_id: str | None,
    secrets: tuple[str, ...],
    no_seal: bool,
) -> None:
    """Append one event (for scripts and tests); prints the event as written."""
    try:
        obj = json.loads(data)
    except ValueError as e:
        raise UsageError(f"--data is not JSON: {e}", "pass a JSON object") from e
    if not isinstance(obj, dict):
        raise UsageError(f"--data is a JSON {type(obj).__name__}, expected an object", "")
    log_path, key_dir = _locations(home)
    log = AuditLog.open(log_path, key_dir, secrets=secrets)
    try:
        event = log.append(type_, obj, run_id=run_id, session_id=session_id)
    except BaseException:
        log.close(checkpoint=False)
        raise
    log.close(checkpoint=not no_seal)
    _echo(json.dumps(event.model_dump(mode="json"), sort_keys=True))


def _read_head_arg(value: str) -> Checkpoint | str:
    path = Path(value)
    if path.is_file():
        try:
            return parse_expected_head(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read expected head {path}: {e}", "") from e
    return parse_expected_head(value)


def _print_report(file: Path, report: VerifyReport) -> None:
    _echo(f"audit log: {file}")
    _echo("checks run: " + "; ".join(report.checks))
    _echo(f"lines: {report.lines}  events: {report.events}  checkpoints: {report.checkpoints}")
    if report.problem is not None:
        _echo(f"FAILED at {report.problem}")
        return
    if report.head is None:
        _echo(f"no signed checkpoint: all {report.unsealed} lines are unsealed")
    else:
        _echo(f"signed head: seq {report.head.seq} id {report.head.id}")
        if report.unsealed:
            how = (
                "chain and HMAC"
                if any(c.startswith("HMAC of") for c in report.checks)
                else ("chain only (no HMAC key)")
            )
            _echo(
                f"unsealed: {report.unsealed} lines after the last checkpoint, verified by "
                f"{how}, not yet covered by a signature"
            )
    _echo("OK: log intact")


@audit.command(name="verify")
@_file_arg
@click.option(
    "--pubkey",
    "pubkey_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Public key obtained out of band (not the copy beside the log).",
)
@click.option(
    "--hmac-key",
    "hmac_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="HMAC key file: also check every line's MAC.",
)
@click.option(
    "--expect-head",
    default=None,
    help="Exported checkpoint file (or its sha256 id) the log must still contain.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def verify(
    *, file: Path, pubkey_file: Path, hmac_file: Path | None, expect_head: str | None, as_json: bool
) -> None:
    """Verify FILE; exit 0 when intact, 1 naming the first bad line otherwise."""
    report = verify_file(
        file,
        public_key=load_public_key(pubkey_file),
        hmac_key=load_hmac_key(hmac_file) if hmac_file else None,
        expect_head=_read_head_arg(expect_head) if expect_head else None,
    )
    if as_json:
        _echo(json.dumps(report.model_dump(mode="json"), indent=2, sort_keys=True))
    else:
        _print_report(file, report)
    _fail_on(report)


def _fail_on(report: VerifyReport) -> None:
    if report.problem is not None:
        raise AuditVerifyError(
            f"audit log verification failed at {report.problem}",
            "treat the log as tampered with from that line on; compare with your exported heads",
        )


@audit.command(name="head")
@_file_arg
@click.option("--export", is_flag=True, help="Print the signed head as a JSON document.")
@click.option(
    "--pubkey",
    "pubkey_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Public key to check the log with (default: the key dir's).",
)
@click.option(
    "--seal", is_flag=True, help="First sign a checkpoint over the unsealed tail (needs the keys)."
)
@_dir_option
def head(
    *, file: Path, export: bool, pubkey_file: Path | None, seal: bool, home: Path | None
) -> None:
    """Show (or --export) the latest signed checkpoint, after verifying the log's chain."""
    _, key_dir = _locations(home)
    if seal:
        with AuditLog.open_existing(file, key_dir) as log:
            log.checkpoint()
    key = load_public_key(pubkey_file or key_dir / PUBLIC_KEY_FILE)
    report = verify_file(file, public_key=key)
    if not report.ok:
        _print_report(file, report)
        _fail_on(report)
    if report.head is None:
        raise AuditVerifyError(
            f"{file} has no signed checkpoint yet",
            "close the log (or `stockade audit append`) to write one",
        )
    if export:
        click.echo(json.dumps(report.head.export(), indent=2, sort_keys=True))
        return
    _echo(
        f"seq {report.head.seq}  ts {report.head.ts}\nid {report.head.id}\n"
        f"head {report.head.head}\nkey {report.head.key_id}\nunsealed after it: "
        f"{report.unsealed}"
    )


def _show_event(obj: dict[str, Any]) -> str:
    ids = " ".join(f"{k}={obj[k]}" for k in ("run_id", "session_id") if obj.get(k) is not None)
    body = json.dumps(obj.get("data"), indent=2, sort_keys=True, ensure_ascii=False)
    return f"#{obj.get('seq')} {obj.get('ts')} {obj.get('type')} {ids}".rstrip() + "\n" + body


@audit.command(name="show")
@_file_arg
@click.option("--limit", type=click.IntRange(1), default=None, help="Show only the last N lines.")
def show(file: Path, limit: int | None) -> None:
    """Pretty-print FILE (unverified: run `verify` for that)."""
    try:
        raws = file.read_bytes().split(b"\n")
    except OSError as e:
        raise InputError(f"cannot read {file}: {e.strerror}", "check the path") from e
    torn = raws.pop() != b""
    start = max(0, len(raws) - limit) if limit else 0
    for n, raw in enumerate(raws[start:], start + 1):
        try:
            event = parse_line(raw)
        except AuditVerifyError as e:
            _echo(f"<line {n}: not a valid event: {e.what}>")
            continue
        _echo(_show_event(event.model_dump(mode="json")))
    if torn:
        _echo(f"<line {len(raws) + 1}: torn (no trailing newline)>")


@audit.command(name="repair")
@_dir_option
def repair(home: Path | None) -> None:
    """Record a torn last line (crash mid-write) as a torn-tail event so appends resume."""
    log_path, key_dir = _locations(home)
    with AuditLog.open_existing(log_path, key_dir) as log:
        event = log.repair_torn_tail()
    if event is None:
        _echo("nothing to repair: the log does not end in a torn line")
    else:
        _echo(f"moved the torn fragment to {event.data['saved_to']} and recorded seq {event.seq}")
