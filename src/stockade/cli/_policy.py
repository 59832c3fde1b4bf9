"""``stockade policy check|show``: validate a policy file, print its effective form and hash.

Exit codes: 0 valid, 1 invalid (every problem printed as FILE:LINE:COL: message (fix: ...)),
2 usage (missing file, bad option).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import yaml

from stockade.policy import CheckResult, Problem, check_policy
from stockade.textsafe import safe_text

__all__ = ["policy"]

MANDATORY_KEYS = (
    "default",
    "servers[].name (allow[].name in version 0)",
    "servers[].image|command",
)


def _t(text: str) -> str:
    return safe_text(text, single_line=True)


def _problem_json(p: Problem) -> dict[str, Any]:
    return p.model_dump(mode="json")


@click.group(name="policy")
def policy() -> None:
    """Check and show policy files (see docs/policy.md)."""


@policy.command(name="check")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(file: str, as_json: bool) -> None:
    """Validate FILE: exit 0 if valid, 1 if invalid, 2 on usage errors."""
    result = check_policy(file)
    if as_json:
        click.echo(json.dumps(_report(result), indent=2, sort_keys=True, ensure_ascii=True))
    else:
        _print_report(result)
    if not result.ok:
        sys.exit(1)


@policy.command(name="show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, readable=False))
@click.option(
    "--format", "fmt", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
def show(file: str, fmt: str) -> None:
    """Print the effective (normalised, defaults applied) policy of FILE."""
    result = check_policy(file)
    if result.policy is None or not result.ok:
        for p in result.errors:
            click.echo(_t(str(p)), err=True)
        sys.exit(1)
    data = result.policy.effective()
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=True))
    else:
        # allow_unicode=False escapes every non-ASCII and control character in the output.
        click.echo(
            f"# effective policy of {_t(file)}\n# {result.policy.effective_hash}\n"
            + yaml.safe_dump(data, sort_keys=True, allow_unicode=False, default_flow_style=False),
            nl=False,
        )


def _report(result: CheckResult) -> dict[str, Any]:
    out: dict[str, Any] = {
        "file": result.file,
        "valid": result.ok,
        "source_version": result.source_version,
        "errors": [_problem_json(p) for p in result.errors],
        "warnings": [_problem_json(p) for p in result.warnings],
    }
    pol = result.policy
    if pol is not None and result.ok:
        out["default"] = pol.doc.default
        out["effective_hash"] = pol.effective_hash
        out["mandatory_keys"] = list(MANDATORY_KEYS)
        out["servers"] = [
            {
                "name": s.name,
                "kind": s.kind,
                "runtime": s.runtime,
                "network": s.network.model_dump(mode="json"),
                "mounts": [m.model_dump(mode="json") for m in pol.mounts.get(s.name, ())],
                "secrets": list(s.secrets),
                "tool_rules": len(s.tools.rules),
            }
            for s in pol.servers
        ]
    return out


def _print_report(result: CheckResult) -> None:
    pol = result.policy
    click.echo(f"policy: {_t(result.file)}")
    if pol is None or not result.ok:
        for p in result.errors:
            click.echo(_t(str(p)))
        for p in result.warnings:
            click.echo(_t(str(p)))
        n = len(result.errors)
        click.echo(f"invalid: {n} problem{'s' if n != 1 else ''}")
        return
    version = (
        "version 0 (historical plugin shape), normalised to version 1"
        if result.source_version == 0
        else "version 1"
    )
    click.echo(f"parsed: ok ({version})")
    click.echo(f"default: {pol.doc.default}")
    by_server: dict[str, list[Problem]] = {}
    general: list[Problem] = []
    for w in result.warnings:
        for s in pol.servers:
            if f"{s.name!r}" in w.message:
                by_server.setdefault(s.name, []).append(w)
                break
        else:
            general.append(w)
    for s in pol.servers:
        net = "none" if s.network.mode == "none" else ",".join(s.network.domains)
        mounts = pol.mounts.get(s.name, ())
        click.echo(
            f"{s.kind} {_t(s.name)}: ok (runtime {s.runtime}; network {_t(net)}; "
            f"{len(mounts)} mount(s); {len(s.secrets)} secret(s); "
            f"{len(s.tools.rules)} tool rule(s))"
        )
        for w in by_server.get(s.name, []):
            click.echo(f"  {_t(str(w))}")
    for w in general:
        click.echo(_t(str(w)))
    click.echo(f"mandatory keys: present ({'; '.join(MANDATORY_KEYS)})")
    click.echo(f"effective hash: {pol.effective_hash}")
    click.echo("valid")
