"""Per-tenant webhook intake throttle (token bucket per ingress replica).

It protects the database from one tenant's webhook storm. It is per replica: with N ingress
replicas a tenant may get up to N x its rate, which is acceptable for a flood guard (the
downstream LLM/SDP limits are global, in the TenantRateLimiter actors).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class _Bucket:
    tokens: float
    updated: float = field(default_factory=time.monotonic)


class IntakeThrottle:
    def __init__(self, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self._buckets: dict[str, _Bucket] = {}
        self._clock = clock

    def try_acquire(self, tenant_id: str, per_minute: int) -> float:
        """0 when admitted, else seconds until a token is available (for Retry-After)."""
        rate = per_minute / 60.0
        capacity = max(1.0, per_minute / 6.0)  # bursts of up to 10 s worth of traffic
        now = self._clock()
        bucket = self._buckets.get(tenant_id)
        if bucket is None:
            bucket = self._buckets[tenant_id] = _Bucket(tokens=capacity, updated=now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate
