from __future__ import annotations

import click


@click.group(name="policy")
def policy() -> None:
    """(being built)"""
