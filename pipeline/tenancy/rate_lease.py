"""Replica-local allowances leased from the shared per-tenant rate limiter.

Every LLM and SDP call of a tenant spends one token of the tenant's bucket, and the buckets
live in the shared rate-limiter actors so the limits hold across replicas. Asking the actor for
each token costs a remote call per LLM/SDP call; ``LeasedRateLimits`` asks for a small batch
instead and spends it locally:

- **Lease.** When the replica's allowance for (tenant, budget) is empty or expired it asks the
  shared limiter (``LeasePort``) for as many tokens as it spent since its last lease plus the
  callers waiting for this one (at least one, at most ``max_batch``). The limiter grants only
  tokens the bucket holds *now* (never debt for a batch); with an empty bucket it books one
  token ahead and says how long to wait, exactly as a single reservation does, so a throttled
  tenant queues as before.
- **Expiry and return.** Leased tokens are good for ``ttl_s``. What is left when they expire is
  handed back with the next lease (in the same call, so returning costs nothing); a replica
  that never asks again loses at most ``max_batch - 1`` tokens, which the bucket earns back.
- **One lease at a time per key.** Concurrent callers of one replica wait for the lease in
  flight instead of each asking the actor.

**How far a limit can be exceeded.** Every token spent was taken from the shared bucket, so
over a long run the rate is exact. A leased token can be spent up to ``ttl_s`` after the bucket
gave it, so over any window of ``W`` seconds a tenant makes at most
``capacity + rate × (W + ttl_s)`` calls — at most ``rate × ttl_s`` more than one shared bucket
spent call by call allows, and never more than the tokens the replicas hold unused
(``replicas × (max_batch − 1)``). With the defaults (``ttl_s`` 1 s) that is one second's worth
of the tenant's limit in a burst, on top of the burst the bucket already allows (ten seconds'
worth).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

LEASE_TTL_S = 1.0
LEASE_MAX_BATCH = 16


class LeasePort(Protocol):
    async def __call__(
        self, tenant_id: str, bucket: str, per_minute: int, want: int, returned: int
    ) -> tuple[int, float]:
        """Take up to ``want`` tokens, giving back ``returned`` first: (tokens granted, seconds
        to wait before using them — 0.0 unless one token was booked ahead)."""
        ...


@dataclass
class _Allowance:
    tokens: int = 0
    expires: float = 0.0
    spent: int = 0  # tokens spent since the last lease, with the callers waiting: its size
    waiting: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LeasedRateLimits:
    """A ``pipeline.tenancy.rate_limiter.RateLimits`` spending tokens leased in small batches."""

    def __init__(
        self,
        lease: LeasePort,
        *,
        ttl_s: float = LEASE_TTL_S,
        max_batch: int = LEASE_MAX_BATCH,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if ttl_s <= 0 or max_batch < 1:
            raise ValueError("a lease needs ttl_s > 0 and max_batch >= 1")
        self._lease = lease
        self._ttl = ttl_s
        self._max_batch = max_batch
        self._clock = clock
        self._sleep = sleep
        self._allowances: dict[tuple[str, str], _Allowance] = {}
        self.leases = 0  # calls to the shared limiter, for tests and benchmarks

    def _take(self, allowance: _Allowance) -> bool:
        if allowance.tokens > 0 and self._clock() < allowance.expires:
            allowance.tokens -= 1
            allowance.spent += 1
            return True
        return False

    async def acquire(self, tenant_id: str, bucket: str, per_minute: int) -> float:
        """Wait until the call may proceed; returns the seconds waited."""
        key = (tenant_id, bucket)
        allowance = self._allowances.get(key)
        if allowance is None:
            allowance = self._allowances[key] = _Allowance()
        if self._take(allowance):
            return 0.0
        allowance.waiting += 1
        async with allowance.lock:
            allowance.waiting -= 1
            if self._take(allowance):  # a lease that landed while this caller waited
                return 0.0
            returned, allowance.tokens = allowance.tokens, 0  # expired: back to the bucket
            # what the last lease's period spent, and everyone queued behind this caller
            want = min(self._max_batch, max(1, allowance.spent + allowance.waiting + 1))
            allowance.spent = 1
            granted, wait = await self._lease(tenant_id, bucket, per_minute, want, returned)
            self.leases += 1
            if wait <= 0:
                allowance.tokens = max(0, granted - 1)  # one is this caller's
                allowance.expires = self._clock() + self._ttl
                return 0.0
        await self._sleep(wait)  # a token booked ahead: this caller's alone, lock released
        return wait
