"""Gate checks as values: each check is a name and a function; a StockadeError is a FAIL line."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from stockade.errors import StockadeError
from stockade.models import Frozen

__all__ = ["Check", "GateResult", "run_checks"]

#: A check returns a one-line detail when it passes and raises StockadeError when it fails.
Check = tuple[str, Callable[[], str]]


class GateResult(Frozen):
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        head = f"{'PASS' if self.ok else 'FAIL'} {self.name}: {self.detail}"
        return head if self.ok or not self.fix else f"{head}\n  fix: {self.fix}"


def run_checks(checks: Sequence[Check]) -> list[GateResult]:
    """Run every check (a failure does not stop the others); return one result each."""
    results: list[GateResult] = []
    for name, fn in checks:
        try:
            results.append(GateResult(name=name, ok=True, detail=fn()))
        except StockadeError as e:
            results.append(GateResult(name=name, ok=False, detail=e.what, fix=e.fix))
    return results
