"""Per-tenant webhook intake throttle (token bucket per ingress replica).

It protects the database from one tenant's webhook storm. It is per replica: with N ingress
replicas a tenant may get up to N x its rate, which is acceptable for a flood guard (the
downstream LLM/SDP limits are global, in the RateLimiterActor actors).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipeline.tenancy.rate_limiter import TokenBucket


class IntakeThrottle:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[str, TokenBucket] = {}
        self._clock = clock

    def try_acquire(self, tenant_id: str, per_minute: int) -> float:
        """0 when admitted, else seconds until a token is available (for Retry-After)."""
        rate = per_minute / 60.0
        capacity = max(1.0, per_minute / 6.0)  # bursts of up to 10 s worth of traffic
        now = self._clock()
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = TokenBucket.full(rate, capacity, now)
        # A changed limit takes effect at once, also for the tokens earned since the last call.
        bucket.rate_per_s, bucket.capacity = rate, capacity
        return bucket.try_take(now)
