from __future__ import annotations

from pathlib import Path

import pytest
from _policy_helpers import Writer

from stockade.policy import CheckResult, check_policy


@pytest.fixture
def check(tmp_path: Path) -> Writer:
    """Write a policy into tmp_path/policy.yaml and check it."""

    def run(text: str) -> CheckResult:
        f = tmp_path / "policy.yaml"
        f.write_text(text, encoding="utf-8")
        return check_policy(f)

    return run
