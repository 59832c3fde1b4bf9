"""``stockade admit``: check workload manifests against PSS and stockade rules."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from stockade.admission import (
    AdmissionResult,
    Document,
    Level,
    StockadeRules,
    Verdict,
    checks_for,
    evaluate,
    load_documents,
)
from stockade.admission._load import MAX_BYTES
from stockade.errors import InputError, PolicyError, StockadeError
from stockade.policy import load_policy
from stockade.textsafe import safe_text

__all__ = ["admit"]


def _read(name: str) -> str:
    try:
        if name == "-":
            data = sys.stdin.buffer.read(MAX_BYTES + 1)
        else:
            with Path(name).open("rb") as f:
                data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise InputError(
            f"cannot read {name}: {e.strerror or e}", "check the path and permissions"
        ) from e
    if len(data) > MAX_BYTES:
        raise InputError(f"{name}: larger than {MAX_BYTES} bytes", "split the file")
    try:
        return data.decode("utf-8-sig")  # a leading byte-order mark is not content
    except UnicodeDecodeError as e:
        raise InputError(f"{name}: not UTF-8 text ({e.reason})", "save the file as UTF-8") from e


def _from_policy(path: str) -> tuple[tuple[str, ...], frozenset[str]]:
    """Registries and granted secrets (of every server) from a policy file.

    An invalid policy is unreadable input (exit 2), never "no grants".
    """
    try:
        policy = load_policy(path)
    except PolicyError as e:
        raise InputError(e.what, e.fix) from e
    return tuple(policy.registries), frozenset(policy.granted_secrets())


def _only(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(part.strip() for part in value.split(",") if part.strip())


def _as_json(pairs: list[tuple[Document, AdmissionResult]]) -> str:
    out = []
    for doc, res in pairs:
        entry: dict[str, Any] = {
            "file": doc.source,
            "index": doc.index,
            "kind": res.kind,
            "name": res.name,
            "verdict": res.verdict.value,
            "violations": [
                {"check": v.check, "path": v.path, "message": v.message, "fix": v.fix}
                for v in res.violations
            ],
        }
        if doc.item is not None:
            entry["item"] = doc.item
        out.append(entry)
    return json.dumps(out, indent=2, ensure_ascii=True)


def _human(pairs: list[tuple[Document, AdmissionResult]], level: str) -> str:
    lines = []
    for doc, res in pairs:
        where = f"{doc.source}[{doc.index}]" + (
            f".items[{doc.item}]" if doc.item is not None else ""
        )
        head = f"{res.verdict.value.upper():5} {where} {res.kind}/{res.name or '<unnamed>'}"
        if not res.workload:
            head += " (runs no code: no check applies)"
        lines.append(safe_text(head, single_line=True))
        for v in res.violations:
            lines.append(safe_text(f"  - {v.check}: {v.path}: {v.message}", single_line=True))
            lines.append(safe_text(f"    fix: {v.fix}", single_line=True))
    denied = sum(1 for _, r in pairs if r.verdict is Verdict.DENY)
    lines.append(
        f"{len(pairs)} document(s) at level {level}: {len(pairs) - denied} allowed, {denied} denied"
    )
    return "\n".join(lines)


@click.command(name="admit")
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--level",
    type=click.Choice([lv.value for lv in Level]),
    default=Level.STOCKADE.value,
    show_default=True,
    help="baseline and restricted are the Pod Security Standards; stockade adds its own rules.",
)
@click.option("--only", "only", metavar="CHECK[,CHECK...]", help="Run just these check ids.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print a JSON array, one object per document."
)
@click.option(
    "--policy",
    "policy_path",
    metavar="POLICY.yaml",
    help="Take registries and granted secrets from a policy.",
)
@click.option(
    "--registry",
    "registries",
    multiple=True,
    metavar="PATTERN",
    help="Allow images from PATTERN (HOST/NAMESPACE/*).",
)
@click.option(
    "--allow-secret", "secrets", multiple=True, metavar="NAME", help="Grant the Secret NAME."
)
def admit(  # noqa: PLR0917 - click passes every option positionally by name
    files: tuple[str, ...],
    level: str,
    only: str | None,
    as_json: bool,
    policy_path: str | None,
    registries: tuple[str, ...],
    secrets: tuple[str, ...],
) -> None:
    """Check workload manifests (Pod, Deployment, Job, CronJob, ...) before they run.

    Exit 0 when every document is allowed, 1 when any is denied, 2 when input is unreadable.
    """
    only_ids = _only(only)
    checks_for(Level(level), only_ids)  # unknown ids are a usage error before any file is read
    policy_regs: tuple[str, ...] = ()
    policy_secrets: frozenset[str] = frozenset()
    if policy_path is not None:
        policy_regs, policy_secrets = _from_policy(policy_path)
    rules = StockadeRules.of(policy_regs + registries, policy_secrets | frozenset(secrets))
    docs: list[Document] = []
    for name in files:
        docs += load_documents(_read(name), name)
    pairs: list[tuple[Document, AdmissionResult]] = []
    for doc in docs:
        try:
            pairs.append((doc, evaluate(doc.obj, level, rules, only_ids)))
        except StockadeError as e:
            e.what = f"{doc.source} document {doc.index}: {e.what}"
            raise
    click.echo(_as_json(pairs) if as_json else _human(pairs, level))
    if any(r.verdict is Verdict.DENY for _, r in pairs):
        # SystemExit, not click's Exit: with standalone_mode=False click would swallow Exit's code.
        sys.exit(1)
