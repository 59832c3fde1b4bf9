"""Where the public cosign/Sigstore test vectors live (shared/testdata beside the repository)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

TESTDATA = (Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata").resolve()
COSIGN = TESTDATA / "cosign"
SIGSTORE = TESTDATA / "sigstore"
CI = COSIGN / "containers-image"
KEYS = CI / "keys"


def require_vectors() -> None:
    if not (COSIGN / "index.tsv").is_file():
        pytest.skip(f"PUBLIC TEST VECTORS ABSENT: {TESTDATA} is missing; these tests did not run")


def read(path: Path) -> str:
    return path.read_text()


class FixedClock:
    def __init__(self, at: datetime | None = None) -> None:
        self.at = at or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at
