"""Token buckets as data: state goes in, new state comes out; time is an injected number."""

from __future__ import annotations

from pydantic import Field

from stockade.models import Frozen

from ._tools import RateLimit

__all__ = ["Bucket", "RateState", "take"]


class Bucket(Frozen):
    tokens: float
    updated: float


class RateState(Frozen):
    """Bucket per key (``client``, ``server``, ``tool``). Immutable: :func:`take` returns anew."""

    buckets: dict[str, Bucket] = Field(default_factory=dict)

    def with_bucket(self, key: str, bucket: Bucket) -> RateState:
        return RateState(buckets={**self.buckets, key: bucket})


def take(bucket: Bucket | None, limit: RateLimit, now: float) -> tuple[bool, Bucket]:
    """Try to take one token at time ``now`` (seconds). A bucket starts full (``burst``).

    Time that runs backwards refills nothing. Over any interval the number of tokens taken is at
    most ``burst + rate * elapsed / per``.
    """
    capacity = float(limit.capacity)
    per_second = limit.rate / limit.per
    if bucket is None:
        tokens, updated = capacity, now
    else:
        elapsed = max(0.0, now - bucket.updated)
        tokens = min(capacity, bucket.tokens + elapsed * per_second)
        updated = max(bucket.updated, now)
    if tokens >= 1.0:
        return True, Bucket(tokens=tokens - 1.0, updated=updated)
    return False, Bucket(tokens=tokens, updated=updated)
