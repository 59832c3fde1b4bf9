"""The approvals package exposes a curated public surface."""

from __future__ import annotations

from stockade import approvals


def test_all_is_sorted_unique_and_importable() -> None:
    names = approvals.__all__
    assert len(names) == len(set(names))
    for name in names:
        assert getattr(approvals, name) is not None
    assert not [n for n in names if n.startswith("_")]


def test_private_modules_stay_private() -> None:
    assert "StoreApprover" in approvals.__all__
    assert "_store" not in approvals.__all__
