from __future__ import annotations

import click


@click.group(name="admit")
def admit() -> None:
    """(being built)"""
