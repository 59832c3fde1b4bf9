"""Shared base of the policy schema models and the validator error convention."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["StrictModel", "bad"]


def bad(what: str, fix: str) -> ValueError:
    """A validator error whose message the loader splits into what failed and how to fix it."""
    return ValueError(f"{what}\nfix: {fix}")


class StrictModel(BaseModel):
    """Frozen, no unknown keys, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)
