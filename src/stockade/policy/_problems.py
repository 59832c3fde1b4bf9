"""Findings about a policy file: each with a location, a message and a fix."""

from __future__ import annotations

from typing import Literal

from stockade.errors import PolicyError
from stockade.models import Frozen

__all__ = ["PolicyLoadError", "Problem"]


class Problem(Frozen):
    """One finding, ``FILE:LINE:COL: message (fix: ...)``. Lines and columns are 1-based."""

    file: str
    line: int = 0
    col: int = 0
    message: str
    fix: str = ""
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.col}" if self.line else self.file
        text = f"{where}: {'warning: ' if self.severity == 'warning' else ''}{self.message}"
        return f"{text} (fix: {self.fix})" if self.fix else text


class PolicyLoadError(PolicyError):
    """A policy file failed to load; ``findings`` holds every problem, not just the first."""

    def __init__(self, file: str, findings: tuple[Problem, ...]) -> None:
        self.findings = findings
        n = len(findings)
        super().__init__(
            f"policy {file} is invalid: {n} problem{'s' if n != 1 else ''}\n"
            + "\n".join(f"  {p}" for p in findings),
            "correct each problem listed (see docs/policy.md), then run: stockade policy check",
            problems=tuple(str(p) for p in findings),
        )
