"""Restart backoff for crashed downstream servers (pure: the clock is injected)."""

from __future__ import annotations

from datetime import datetime, timedelta

from stockade.models import Clock

__all__ = ["Backoff"]


class Backoff:
    """Exponential backoff per server: 1 s, 2 s, 4 s ... capped; a success resets it."""

    def __init__(self, clock: Clock, *, base_s: float = 1.0, cap_s: float = 60.0) -> None:
        self._clock = clock
        self._base = base_s
        self._cap = cap_s
        self._failures: dict[str, int] = {}
        self._next: dict[str, datetime] = {}

    def wait_s(self, server: str) -> float:
        """Seconds until a restart of ``server`` may be tried (0 when it may be tried now)."""
        when = self._next.get(server)
        if when is None:
            return 0.0
        return max((when - self._clock.now()).total_seconds(), 0.0)

    def failed(self, server: str) -> float:
        """Record a failure (crash or failed start); returns the delay before the next try."""
        n = self._failures.get(server, 0) + 1
        self._failures[server] = n
        delay = min(self._base * float(2 ** min(n - 1, 30)), self._cap)
        self._next[server] = self._clock.now() + timedelta(seconds=delay)
        return delay

    def succeeded(self, server: str) -> None:
        self._failures.pop(server, None)
        self._next.pop(server, None)

    def failures(self, server: str) -> int:
        return self._failures.get(server, 0)
