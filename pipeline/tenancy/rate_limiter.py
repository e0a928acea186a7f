"""Per-tenant rate limits: token buckets that hand out reservations instead of blocking.

A bucket earns ``rate_per_s`` tokens a second up to ``capacity`` (the burst). The two ways of
spending differ only when the bucket is empty: ``try_take`` leaves it alone and says how long
until a token is there (the webhook intake throttle refuses the request with a Retry-After);
``reserve`` books the next token anyway, so the balance goes negative and later callers queue
behind it (the tenants' LLM and SDP limits: the caller sleeps in its own coroutine, so an
over-limit tenant never blocks another).

``RateLimiter`` holds one bucket per (tenant, budget); the sharded Ray actors of
``actors/rate_limiter.py`` (``RateLimiterActor``) wrap it so every replica shares the buckets.
The stages hold a ``RateLimits``: ``RayRateLimits`` in the pools (tokens leased from the actors
in small batches, ``pipeline.tenancy.rate_lease``), ``LocalRateLimits`` in-process.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass
class TokenBucket:
    rate_per_s: float
    capacity: float
    tokens: float
    updated: float  # clock reading of the last refill

    @classmethod
    def full(cls, rate_per_s: float, capacity: float, now: float) -> TokenBucket:
        """A new bucket starts full: a first burst is allowed."""
        return cls(rate_per_s=rate_per_s, capacity=capacity, tokens=capacity, updated=now)

    def refill(self, now: float) -> None:
        """Add what was earned since the last refill, at the current rate, up to capacity."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now

    def try_take(self, now: float) -> float:
        """Take a token if one is there (returns 0.0); otherwise take nothing and return the
        seconds until one will be."""
        self.refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_s

    def reserve(self, now: float) -> float:
        """Take the next token even if it is not earned yet; the seconds to wait before using
        it (0.0 when it was there)."""
        self.refill(now)
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate_per_s

    def lease(self, now: float, want: int, returned: int = 0) -> tuple[int, float]:
        """Give back ``returned`` unused tokens (up to capacity), then take up to ``want`` of
        the whole tokens there now; with none there, book one ahead like ``reserve``:
        (tokens taken, seconds to wait before using them)."""
        self.refill(now)
        if returned > 0:
            self.tokens = min(self.capacity, self.tokens + returned)
        if self.tokens >= 1.0:
            taken = min(max(1, want), int(self.tokens))
            self.tokens -= taken
            return taken, 0.0
        return 1, self.reserve(now)


class RateLimiter:
    """One ``TokenBucket`` per (tenant, budget), sized from the tenant's current limit."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._clock = clock

    def reserve(
        self, tenant_id: str, bucket: str, per_minute: int, burst: int | None = None
    ) -> float:
        """Take one token (possibly one not yet earned); seconds to wait before using it."""
        now = self._clock()
        return self._bucket(tenant_id, bucket, per_minute, burst, now).reserve(now)

    def lease(
        self, tenant_id: str, bucket: str, per_minute: int, want: int, returned: int = 0
    ) -> tuple[int, float]:
        """A batch for a replica's local allowance (``pipeline.tenancy.rate_lease``)."""
        now = self._clock()
        return self._bucket(tenant_id, bucket, per_minute, None, now).lease(now, want, returned)

    def _bucket(
        self, tenant_id: str, bucket: str, per_minute: int, burst: int | None, now: float
    ) -> TokenBucket:
        """The (tenant, budget) bucket, resized when the tenant's limit changed."""
        rate = per_minute / 60.0
        capacity = float(burst if burst is not None else max(1, per_minute // 6))
        key = (tenant_id, bucket)
        state = self._buckets.get(key)
        if state is None or state.rate_per_s != rate or state.capacity != capacity:
            tokens = capacity if state is None else min(state.tokens, capacity)
            state = self._buckets[key] = TokenBucket(rate, capacity, tokens, now)
        return state


class RateLimits(Protocol):
    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        """Wait until the call may proceed; returns the seconds waited."""
        ...


class LocalRateLimits:
    """In-process limiter with the same semantics as the Ray actors."""

    def __init__(self, buckets: RateLimiter | None = None) -> None:
        self._buckets = buckets or RateLimiter()

    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        wait = self._buckets.reserve(tenant_id, bucket, per_minute)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


def shard_for(tenant_id: str, shards: int) -> int:
    return zlib.crc32(tenant_id.encode()) % shards
