"""Container image identities."""

from __future__ import annotations

import re

from pydantic import Field, field_validator

from ._base import Frozen

_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


class PinnedImage(Frozen):
    """An image pinned by content digest. It cannot exist without a ``sha256:`` digest."""

    registry: str = Field(min_length=1)
    repository: str = Field(min_length=1)
    digest: str
    tag: str | None = None

    @field_validator("digest")
    @classmethod
    def _digest(cls, v: str) -> str:
        if not _DIGEST.fullmatch(v):
            raise ValueError(f"digest must be sha256:<64 lowercase hex>, got {v!r}")
        return v

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}@{self.digest}"
