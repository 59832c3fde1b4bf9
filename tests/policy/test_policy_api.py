"""The public surface of the policy and secrets packages is curated."""

from __future__ import annotations

import stockade.policy
import stockade.secrets


def test_policy_exports_are_curated_and_resolvable() -> None:
    for pkg in (stockade.policy, stockade.secrets):
        assert pkg.__all__ == sorted(pkg.__all__, key=lambda n: (not n.isupper(), n))
        for name in pkg.__all__:
            assert getattr(pkg, name) is not None
            assert not name.startswith("_")


def test_private_modules_stay_private() -> None:
    public = {n for n in dir(stockade.policy) if not n.startswith("_")}
    assert public - set(stockade.policy.__all__) <= {"annotations"} | {
        n for n in public if n.startswith("_")
    }
