"""``stockade secret``: manage the secret store (names are listed; values are never printed)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stockade import paths
from stockade.errors import UsageError
from stockade.secrets import MAX_SECRET_BYTES, DirectorySecretStore
from stockade.textsafe import safe_text

__all__ = ["secret"]


def _store(path: Path | None, *, create: bool) -> DirectorySecretStore:
    p = path or paths.secret_dir()
    if create and not p.exists():
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return DirectorySecretStore.create(p)
    return DirectorySecretStore(p)


_dir_option = click.option(
    "--dir",
    "store_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Secret store directory (default: $STOCKADE_HOME/secrets).",
)


@click.group(name="secret")
def secret() -> None:
    """Store secrets that policies grant by name (0700 directory of 0400 files)."""


@secret.command(name="put")
@click.argument("name")
@_dir_option
def put(name: str, store_dir: Path | None) -> None:
    """Read NAME's value from standard input (never from the command line) and store it."""
    if sys.stdin.isatty():
        click.echo(f"value for {safe_text(name)} (end with Ctrl-D):", err=True)
    value = sys.stdin.buffer.read(MAX_SECRET_BYTES + 1)
    if value.endswith(b"\n") and value.count(b"\n") == 1:
        value = value[:-1]  # `echo VALUE |` adds one trailing newline
    if not value:
        raise UsageError(f"no value given for secret {name!r}", "pipe the value on standard input")
    _store(store_dir, create=True).put(name, value)
    click.echo(f"stored secret {safe_text(name)} ({len(value)} bytes)")


@secret.command(name="list")
@_dir_option
def list_(store_dir: Path | None) -> None:
    """List secret names (never values)."""
    for n in _store(store_dir, create=False).names():
        click.echo(safe_text(n, single_line=True))


@secret.command(name="rm")
@click.argument("name")
@_dir_option
def rm(name: str, store_dir: Path | None) -> None:
    """Delete secret NAME."""
    _store(store_dir, create=False).delete(name)
    click.echo(f"deleted secret {safe_text(name)}")
