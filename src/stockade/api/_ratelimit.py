"""Per-key token buckets for the control API (per identity, per run), on an injected clock."""

from __future__ import annotations

import math
import threading

from stockade.models import Clock
from stockade.policy import RateLimit, RateState, take

__all__ = ["Limiter"]


class Limiter:
    """``check(key)`` takes one token; it returns ``None`` (allowed) or seconds to wait."""

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self._limit = limit
        self._clock = clock
        self._state = RateState()
        self._lock = threading.Lock()

    def check(self, key: str) -> int | None:
        now = self._clock.now().timestamp()
        with self._lock:
            ok, bucket = take(self._state.buckets.get(key), self._limit, now)
            self._state = self._state.with_bucket(key, bucket, now)
        if ok:
            return None
        missing = 1.0 - bucket.level(now)
        return max(1, math.ceil(missing / bucket.per_second))
