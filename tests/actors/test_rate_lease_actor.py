"""Leased rate-limit tokens through the real ``RateLimiterActor`` on a real Ray, three
replicas' ``RayRateLimits`` (each its own allowances, as each Serve replica has) with 20
callers each: wanting far more than the tenant's 600/min for 4 s, together they stay within
``capacity + rate × (window + ttl)`` in every window (throttled, each call books its own token
as before); under a limit they do not reach, they call the actor far less than once per call.
Ray is started in this process and shut down at the end (the side lane)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests import lanes

pytestmark = lanes.ray_side

RATE_PER_MIN = 600
RATE, CAPACITY, TTL = RATE_PER_MIN / 60, RATE_PER_MIN // 6, 1.0


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    from local_stack.ray_serve import ray_init_kwargs, start_ray, stop_ray

    start_ray(**ray_init_kwargs(num_cpus=2, dashboard=False))
    try:
        yield
    finally:
        stop_ray()


async def test_three_replicas_leasing_together_stay_within_the_bound(ray_cluster: None) -> None:
    from actors.rate_limiter import RayRateLimits

    replicas = [RayRateLimits(ttl_s=TTL) for _ in range(3)]
    tenant = f"lease-{time.monotonic_ns()}"
    await replicas[0].acquire(tenant, "llm", RATE_PER_MIN)  # the actor is up: start the clock
    start = time.monotonic()
    uses: list[float] = [start]
    duration = 4.0

    async def caller(limits: RayRateLimits) -> None:
        while time.monotonic() - start < duration:
            await limits.acquire(tenant, "llm", RATE_PER_MIN)
            uses.append(time.monotonic())

    await asyncio.gather(*(caller(r) for r in replicas for _ in range(20)))
    uses.sort()
    assert len(uses) > CAPACITY + RATE * 2  # the limit, not the callers, decided the rate
    slack = 0.25  # the event loop's own delay between a booked time and the caller waking
    for i, first in enumerate(uses):
        for window in (0.5, 1.0, 2.0, duration + 1):
            within = sum(1 for t in uses[i:] if t - first <= window)
            assert within <= CAPACITY + RATE * (window + TTL + slack), (window, within)


async def test_under_the_limit_replicas_reach_the_actor_once_per_batch(ray_cluster: None) -> None:
    from actors.rate_limiter import RayRateLimits

    replicas = [RayRateLimits(ttl_s=TTL) for _ in range(3)]
    tenant = f"batch-{time.monotonic_ns()}"
    per_caller = 30

    async def caller(limits: RayRateLimits) -> list[float]:
        return [await limits.acquire(tenant, "sdp", 600_000) for _ in range(per_caller)]

    waits = await asyncio.gather(*(caller(r) for r in replicas for _ in range(20)))
    calls = 3 * 20 * per_caller
    assert [w for ws in waits for w in ws] == [0.0] * calls  # a burst of 100,000 holds them
    leases = sum(r.leases for r in replicas)
    assert leases <= calls / 8, (leases, calls)  # batches reach the actor, not every call
