"""The ``stockade`` command line: the only place (with the HTTP API) that catches StockadeError."""

from __future__ import annotations

import sys

import click

from stockade import __version__
from stockade.errors import StockadeError
from stockade.textsafe import safe_text

from ._admit import admit
from ._api import api, opa
from ._approvals import approvals, intercept, kill
from ._audit import audit
from ._ca import ca
from ._demo import demo
from ._gates import (
    drill,
    evidence,
    policy_apply,
    policy_rollback,
    postflight,
    preflight,
    retention,
)
from ._gateway import gateway, policy_import, tools
from ._image import image
from ._k8s import k8s
from ._policy import policy
from ._run import run
from ._runs import runs, trace
from ._secret import secret

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stockade")
def cli() -> None:
    """Stockade: sandbox, admit, gate and prove every AI-agent tool call."""


cli.add_command(policy)
cli.add_command(admit)
cli.add_command(audit)
cli.add_command(run)
cli.add_command(runs)
cli.add_command(trace)
cli.add_command(demo)
cli.add_command(secret)
cli.add_command(image)
cli.add_command(gateway)
cli.add_command(tools)
cli.add_command(approvals)
cli.add_command(kill)
cli.add_command(intercept)
cli.add_command(k8s)
cli.add_command(ca)
cli.add_command(api)
cli.add_command(opa)
cli.add_command(preflight)
cli.add_command(postflight)
cli.add_command(evidence)
cli.add_command(drill)
cli.add_command(retention)
policy.add_command(policy_import)
policy.add_command(policy_apply)
policy.add_command(policy_rollback)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning StockadeError into a message and an exit code."""
    if sys.flags.optimize:
        # `python -O` strips assert statements; stockade's code uses them only for type
        # narrowing, but a security tool should not run in a mode where any check can vanish.
        click.echo(
            "stockade: error: refusing to run with Python optimisations (-O / PYTHONOPTIMIZE)\n"
            "  fix: unset PYTHONOPTIMIZE and run without -O",
            err=True,
        )
        sys.exit(2)
    try:
        rv = cli.main(args=argv, prog_name="stockade", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(2 if isinstance(e, click.UsageError) else e.exit_code)
    except StockadeError as e:
        click.echo(f"stockade: error: {safe_text(e.message)}", err=True)
        sys.exit(e.exit_code)
    # standalone_mode=False returns a command's int result (or click.Exit's code) instead of
    # exiting: propagate it, so a failing check never reports success.
    if isinstance(rv, int) and rv:
        sys.exit(rv)
