"""Token buckets as data: state goes in, new state comes out; time is an injected number."""

from __future__ import annotations

from pydantic import Field

from stockade.models import Frozen

from ._tools import RateLimit

__all__ = ["PRUNE_ABOVE", "Bucket", "RateState", "take"]

#: When a state holds more buckets than this, buckets that have refilled completely are dropped.
#: That is lossless: a full bucket behaves exactly like an absent one.
PRUNE_ABOVE = 4096


class Bucket(Frozen):
    tokens: float
    updated: float
    capacity: float
    per_second: float

    def level(self, now: float) -> float:
        return min(self.capacity, self.tokens + max(0.0, now - self.updated) * self.per_second)


class RateState(Frozen):
    """Bucket per key (``client``, ``server``, ``tool``). Immutable: :func:`take` returns anew."""

    buckets: dict[str, Bucket] = Field(default_factory=dict)

    def with_bucket(self, key: str, bucket: Bucket, now: float) -> RateState:
        buckets = {**self.buckets, key: bucket}
        if len(buckets) > PRUNE_ABOVE:
            buckets = {k: b for k, b in buckets.items() if k == key or b.level(now) < b.capacity}
        return RateState(buckets=buckets)


def take(bucket: Bucket | None, limit: RateLimit, now: float) -> tuple[bool, Bucket]:
    """Try to take one token at time ``now`` (seconds). A bucket starts full (``burst``).

    Time that runs backwards refills nothing. Over any interval the number of tokens taken is at
    most ``burst + rate * elapsed / per``.
    """
    capacity = float(limit.capacity)
    per_second = limit.rate / limit.per
    if bucket is None or bucket.capacity != capacity or bucket.per_second != per_second:
        # New key, or the rule's limit changed: start from the stricter of old level and full.
        tokens = capacity if bucket is None else min(capacity, bucket.level(now))
        updated = now if bucket is None else max(bucket.updated, now)
    else:
        tokens = bucket.level(now)
        updated = max(bucket.updated, now)
    b = Bucket(tokens=tokens, updated=updated, capacity=capacity, per_second=per_second)
    if tokens >= 1.0:
        return True, b.model_copy(update={"tokens": tokens - 1.0})
    return False, b
