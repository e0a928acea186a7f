"""Per-tenant token buckets that hand out reservations instead of blocking.

``reserve`` books the next token and returns how long the caller must wait for it, so the
limiter itself never sleeps: a tenant that is over its limit waits in its own coroutine and
other tenants' calls go straight through. The same class runs in-process (tests) and inside the
sharded ``TenantRateLimiter`` Ray actors.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from typing import Protocol

from pipeline.tenancy.token_bucket import TokenBucket


class TokenBuckets:
    """One ``TokenBucket`` per (tenant, budget), sized from the tenant's current limit."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._clock = clock

    def reserve(
        self, tenant_id: str, bucket: str, per_minute: int, burst: int | None = None
    ) -> float:
        """Take one token (possibly one not yet earned); seconds to wait before using it."""
        now = self._clock()
        rate = per_minute / 60.0
        capacity = float(burst if burst is not None else max(1, per_minute // 6))
        key = (tenant_id, bucket)
        state = self._buckets.get(key)
        if state is None or state.rate_per_s != rate or state.capacity != capacity:
            tokens = capacity if state is None else min(state.tokens, capacity)
            state = self._buckets[key] = TokenBucket(rate, capacity, tokens, now)
        return state.reserve(now)


class RateLimiter(Protocol):
    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        """Wait until the call may proceed; returns the seconds waited."""
        ...


class LocalRateLimiter:
    """In-process limiter with the same semantics as the Ray actors."""

    def __init__(self, buckets: TokenBuckets | None = None) -> None:
        self._buckets = buckets or TokenBuckets()

    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        import asyncio

        wait = self._buckets.reserve(tenant_id, bucket, per_minute)
        if wait > 0:
            await asyncio.sleep(wait)
        return wait


def shard_for(tenant_id: str, shards: int) -> int:
    return zlib.crc32(tenant_id.encode()) % shards
