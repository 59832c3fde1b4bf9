"""The kill switch as a value (pure): engaged or not, by whom, when and why."""

from __future__ import annotations

from datetime import datetime

from stockade.models import Frozen

__all__ = ["KillSwitch"]


class KillSwitch(Frozen):
    """While ``engaged``, every pending and new sensitive call is denied."""

    engaged: bool
    reason: str = ""
    by: str = ""
    at: datetime | None = None

    @classmethod
    def off(cls) -> KillSwitch:
        return cls(engaged=False)
