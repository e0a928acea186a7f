"""Replica-local allowances leased from one shared ``RateLimiter`` on a hand-driven clock: few
calls to the shared limiter, throttled tenants still queue, expired tokens go back, and several
replicas together stay within ``capacity + rate × (window + ttl)``."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.tenancy.rate_lease import LeasedRateLimits
from pipeline.tenancy.rate_limiter import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Shared:
    """The shared limiter as the actor holds it, with the calls it got."""

    def __init__(self, clock: Clock) -> None:
        self.buckets = RateLimiter(clock=clock)
        self.calls: list[tuple[int, int]] = []  # (want, returned)
        self.answers: list[tuple[int, float]] = []  # (granted, wait)

    async def __call__(
        self, tenant_id: str, bucket: str, per_minute: int, want: int, returned: int
    ) -> tuple[int, float]:
        self.calls.append((want, returned))
        await asyncio.sleep(0)  # a remote call yields
        answer = self.buckets.lease(tenant_id, bucket, per_minute, want, returned)
        self.answers.append(answer)
        return answer


async def no_sleep(_seconds: float) -> None:
    await asyncio.sleep(0)


def replica(shared: Shared, clock: Clock, **kwargs: float) -> LeasedRateLimits:
    return LeasedRateLimits(shared, clock=clock, sleep=no_sleep, **kwargs)  # type: ignore[arg-type]


async def test_concurrent_calls_of_one_replica_share_batched_leases() -> None:
    clock = Clock()
    shared = Shared(clock)
    limits = replica(shared, clock)
    waits = await asyncio.gather(*(limits.acquire("acme", "sdp", 6000) for _ in range(200)))
    assert waits == [0.0] * 200  # a burst of 1,000 holds them all
    assert len(shared.calls) < 200 / 8, shared.calls  # batches, not one call per token
    assert all(want <= 16 for want, _ in shared.calls)
    bucket = shared.buckets._buckets[("acme", "sdp")]
    # every spent token came out of the shared bucket; what is still held is the rest
    held = limits._allowances[("acme", "sdp")].tokens
    assert 1000 - bucket.tokens == pytest.approx(200 + held)


async def test_an_empty_bucket_books_ahead_one_token_per_call_as_before() -> None:
    clock = Clock()
    shared = Shared(clock)
    limits = replica(shared, clock)
    # 60/min: 1 token a second, a burst of 10
    first = [await limits.acquire("acme", "llm", 60) for _ in range(10)]
    assert first == [0.0] * 10
    queued = [await limits.acquire("acme", "llm", 60) for _ in range(3)]
    assert queued == pytest.approx([1.0, 2.0, 3.0])  # each waits its turn, as reserve does
    assert [granted for granted, _ in shared.answers[-3:]] == [1, 1, 1]  # never a debt batch


async def test_unused_tokens_expire_and_go_back_with_the_next_lease() -> None:
    clock = Clock()
    shared = Shared(clock)
    limits = replica(shared, clock, ttl_s=1.0)
    await asyncio.gather(*(limits.acquire("acme", "sdp", 600) for _ in range(8)))
    await asyncio.gather(*(limits.acquire("acme", "sdp", 600) for _ in range(4)))
    held = limits._allowances[("acme", "sdp")].tokens
    assert held > 0  # the last lease asked for what the period before spent (8), 4 were used
    clock.now += 1.5  # expired: not spent any more ...
    tokens_before = shared.buckets._buckets[("acme", "sdp")].tokens
    await limits.acquire("acme", "sdp", 600)
    want, returned = shared.calls[-1]
    assert returned == held  # ... but handed back in the next call
    assert shared.buckets._buckets[("acme", "sdp")].tokens == pytest.approx(
        min(100.0, tokens_before + 1.5 * 10 + held) - want
    )


async def test_replicas_together_stay_within_the_bound() -> None:
    """Three replicas, each with 20 callers wanting far more than 600/min for 20 s of clock:
    every window stays within capacity + rate × (window + ttl)."""
    clock = Clock()
    shared = Shared(clock)
    ttl, rate, capacity = 1.0, 10.0, 100.0
    replicas = [replica(shared, clock, ttl_s=ttl) for _ in range(3)]
    start = clock.now
    uses: list[float] = []

    async def caller(limits: LeasedRateLimits) -> None:
        while clock.now - start < 20:
            wait = await limits.acquire("acme", "llm", 600)
            uses.append(clock.now + wait)  # when the call may go ahead
            await asyncio.sleep(0)

    async def ticking() -> None:
        while clock.now - start < 20:
            clock.now += 0.05
            await asyncio.sleep(0)

    await asyncio.gather(ticking(), *(caller(r) for r in replicas for _ in range(20)))
    uses.sort()
    assert len(uses) > capacity + rate * 10  # the limit was the bottleneck
    for i, first in enumerate(uses):
        for window in (0.5, 1.0, 5.0, 20.0):
            within = sum(1 for t in uses[i:] if t - first <= window)
            assert within <= capacity + rate * (window + ttl) + 1, (first, window, within)
