from __future__ import annotations

import click


@click.command(name="runs")
def runs() -> None:
    """(being built)"""


@click.command(name="trace")
def trace() -> None:
    """(being built)"""
