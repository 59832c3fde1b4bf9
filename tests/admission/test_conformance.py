"""Conformance with Kubernetes' own pod-security-admission fixtures (optional, external data).

Kubernetes publishes generated pass/fail Pods per level and policy version under
``test/testdata/{baseline,restricted}/v1.NN/{pass,fail}/`` in kubernetes/pod-security-admission.
Point ``STOCKADE_PSA_FIXTURES`` at that ``testdata`` directory to run every fixture of the newest
version through stockade: each ``pass`` Pod must be allowed, each ``fail`` Pod denied by the check
its file is named after (or the restricted check that replaces it). The fixtures are not copied
into this repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from stockade.admission import StockadeRules, Verdict, evaluate, load_documents

VERSION = "v1.37"
ROOT = Path(os.environ.get("STOCKADE_PSA_FIXTURES", "/nonexistent"))
REPLACED = {
    "capabilities_baseline": "capabilities_restricted",
    "seccompprofile_baseline": "seccompprofile_restricted",
    "hostpathvolumes": "restrictedvolumes",
    "procmount": "procmount_restricted",
}


def fixtures() -> list[tuple[str, str, Path]]:
    return [
        (level, outcome, f)
        for level in ("baseline", "restricted")
        for outcome in ("pass", "fail")
        for f in sorted((ROOT / level / VERSION / outcome).glob("*.yaml"))
    ]


FIXTURES = fixtures()


@pytest.mark.guarantee("admit-pss-baseline", "admit-pss-restricted")
@pytest.mark.skipif(
    not FIXTURES,
    reason=f"SKIPPED LOUDLY: set STOCKADE_PSA_FIXTURES to kubernetes/pod-security-admission "
    f"test/testdata to run the upstream {VERSION} conformance fixtures",
)
@pytest.mark.parametrize(
    ("level", "outcome", "path"), FIXTURES, ids=[f"{lv}-{o}-{p.stem}" for lv, o, p in FIXTURES]
)
def test_upstream_fixture_gets_the_kubernetes_verdict(level: str, outcome: str, path: Path) -> None:
    for doc in load_documents(path.read_text(), str(path)):
        result = evaluate(doc.obj, level, StockadeRules())
        if outcome == "pass":
            assert result.verdict is Verdict.ALLOW, result.violations
        else:
            want = re.sub(r"\d+$", "", path.stem)
            if level == "restricted":
                want = REPLACED.get(want, want)
            assert want in {v.check.lower() for v in result.violations}


def test_conformance_fixtures_are_reported_when_absent() -> None:
    if not FIXTURES:
        pytest.skip(
            "SKIPPED LOUDLY: upstream PSA conformance fixtures absent "
            "(set STOCKADE_PSA_FIXTURES); the table tests still cover every check"
        )
    assert len(FIXTURES) > 100
