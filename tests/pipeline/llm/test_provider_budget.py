"""The shared provider budget without Ray: limits that hold, grants handed out fairly between the
tenants that have work, a 429 slowing everyone, a 402 stopping everyone at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from pipeline.llm.provider.budget import ProviderBudget, ProviderLimits
from pipeline.llm.provider.gate import Grant, ProviderBusy, ProviderPaused


async def hold(budget: ProviderBudget, tenant: str, seconds: float, log: list[str]) -> None:
    """One call of ``seconds``: acquire, record who got it, release."""
    grant = await budget.acquire(tenant, timeout_s=30)
    log.append(tenant)
    await asyncio.sleep(seconds)
    await budget.release(grant.id, outcome="ok")


async def test_concurrency_is_never_exceeded_and_a_tenant_alone_uses_all_of_it() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=3))
    peak = 0

    async def call() -> None:
        nonlocal peak
        grant = await budget.acquire("a", timeout_s=10)
        peak = max(peak, budget.in_flight)
        await asyncio.sleep(0.05)
        await budget.release(grant.id, outcome="ok")

    started = time.monotonic()
    await asyncio.gather(*(call() for _ in range(12)))
    assert peak == 3  # all of it, and no more
    assert 0.2 <= time.monotonic() - started < 1.0  # 12 calls, 3 at a time, 50 ms each
    assert budget.in_flight == 0 and budget.waiting == 0


async def test_a_quiet_tenant_gets_the_next_free_slot_ahead_of_a_flood() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=2))
    order: list[str] = []
    flood = [asyncio.create_task(hold(budget, "a", 0.1, order)) for _ in range(20)]
    await asyncio.sleep(0.02)  # A holds both slots, 18 of its calls queue
    assert budget.snapshot()["waiting"] == {"a": 18}
    quiet = asyncio.create_task(hold(budget, "b", 0.01, order))
    await quiet
    # B waited for one slot to free, not for A's queue: it is the third grant
    assert order.index("b") == 2
    await asyncio.gather(*flood)


async def test_weights_share_the_slots_when_both_have_work() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=3))
    order: list[str] = []
    calls = [hold(budget, "a", 0.05, order) for _ in range(30)]
    calls += [hold(budget, "b", 0.05, order) for _ in range(30)]
    tasks = [asyncio.create_task(c) for c in calls]
    await asyncio.gather(*tasks)
    # A's calls were queued first and took the first three slots; from then on, while both
    # have work, every freed slot goes to whoever has fewer in progress: half each
    share = order[3:43].count("b") / 40
    assert 0.45 <= share <= 0.55


async def test_dispatch_weight_is_honoured() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=3))
    order: list[str] = []

    async def weighted(tenant: str, weight: int) -> None:
        grant = await budget.acquire(tenant, weight=weight, timeout_s=30)
        order.append(tenant)
        await asyncio.sleep(0.05)
        await budget.release(grant.id, outcome="ok")

    tasks = [asyncio.create_task(weighted("heavy", 2)) for _ in range(40)]
    tasks += [asyncio.create_task(weighted("light", 1)) for _ in range(40)]
    await asyncio.sleep(0.45)
    first = order[:24]
    assert 0.55 <= first.count("heavy") / len(first) <= 0.8  # about 2 of every 3
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_requests_per_minute_paces_grants_below_the_limit() -> None:
    budget = ProviderBudget(ProviderLimits(requests_per_minute=600))  # 10/s, a burst of 10
    started = time.monotonic()
    grants = [await budget.acquire("a", timeout_s=10) for _ in range(20)]
    elapsed = time.monotonic() - started
    for grant in grants:
        await budget.release(grant.id, outcome="ok")
    # the first 10 at once, the next 10 at 9.8/s: never more than 600 in a minute
    assert 10 / 9.8 - 0.05 <= elapsed <= 10 / 9.8 + 0.5


async def test_tokens_per_minute_counts_the_estimate_and_refunds_what_was_not_used() -> None:
    budget = ProviderBudget(ProviderLimits(tokens_per_minute=6000))  # 100 tokens/s
    first = await budget.acquire("a", tokens=100, timeout_s=5)
    started = time.monotonic()
    await budget.release(first.id, outcome="ok", tokens_used=20)  # 80 come back
    second = await budget.acquire("a", tokens=100, timeout_s=5)
    assert time.monotonic() - started < 0.1
    started = time.monotonic()
    third = await budget.acquire("a", tokens=100, timeout_s=5)
    # the bucket went to -20 with the second: ~0.2 s to refill past zero
    assert 0.1 <= time.monotonic() - started <= 0.6
    for grant in (second, third):
        await budget.release(grant.id, outcome="ok", tokens_used=100)


async def test_a_429_pauses_every_tenant_for_its_retry_after() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=10))
    grant = await budget.acquire("a", timeout_s=5)
    await budget.release(grant.id, outcome="rate_limited", retry_after_s=0.4)
    assert budget.state() == "slowed"
    started = time.monotonic()
    other = await budget.acquire("b", timeout_s=5)  # another tenant waits too
    assert 0.35 <= time.monotonic() - started <= 0.8
    await budget.release(other.id, outcome="ok")
    assert budget.state() == "ok"


async def test_a_429_without_retry_after_pauses_and_backs_off() -> None:
    budget = ProviderBudget(ProviderLimits(first_pause_s=0.1, max_pause_s=1.0))
    for expected in (0.1, 0.2):
        grant = await budget.acquire("a", timeout_s=5)
        await budget.release(grant.id, outcome="rate_limited")
        started = time.monotonic()
        following = await budget.acquire("a", timeout_s=5)
        assert expected - 0.03 <= time.monotonic() - started <= expected + 0.3
        await budget.release(following.id, outcome="ok" if expected == 0.2 else "server_error")
    assert budget.snapshot()["rate_limited"] == 2


async def test_a_402_refuses_every_waiting_and_new_call_at_once() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=1, credits_recheck_s=60))
    first = await budget.acquire("a", timeout_s=5)
    waiting = [asyncio.create_task(budget.acquire(t, timeout_s=30)) for t in ("a", "b", "c")]
    await asyncio.sleep(0.02)
    started = time.monotonic()
    await budget.release(first.id, outcome="no_credits", detail="insufficient credits")
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert time.monotonic() - started < 0.1
    assert all(isinstance(r, ProviderPaused) for r in results), results
    assert "insufficient credits" in str(results[0])
    with pytest.raises(ProviderPaused):
        await budget.acquire("d", timeout_s=30)
    assert budget.state() == "paused" and budget.snapshot()["refused_paused"] == 4


async def test_after_a_402_one_probe_per_recheck_and_a_success_lifts_the_pause() -> None:
    budget = ProviderBudget(ProviderLimits(credits_recheck_s=0.2))
    budget.credits_exhausted("insufficient credits")
    with pytest.raises(ProviderPaused):
        await budget.acquire("a", timeout_s=1)
    await asyncio.sleep(0.25)
    probe = await budget.acquire("a", timeout_s=1)  # one call may find out
    with pytest.raises(ProviderPaused):  # ... and only one
        await budget.acquire("b", timeout_s=1)
    await budget.release(probe.id, outcome="no_credits", detail="still none")
    with pytest.raises(ProviderPaused, match="still none"):
        await budget.acquire("b", timeout_s=1)
    await asyncio.sleep(0.25)
    probe = await budget.acquire("b", timeout_s=1)
    await budget.release(probe.id, outcome="ok")
    assert budget.state() == "ok"
    grant = await budget.acquire("a", timeout_s=1)
    await budget.release(grant.id, outcome="ok")


async def test_the_credit_reading_pauses_and_lifts() -> None:
    budget = ProviderBudget()
    budget.note_credit(12.5)
    assert budget.state() == "ok"
    budget.note_credit(0.0)
    with pytest.raises(ProviderPaused, match="remaining credit is 0"):
        await budget.acquire("a", timeout_s=1)
    budget.note_credit(None)  # the key has no limit (any more): nothing to hold back
    grant = await budget.acquire("a", timeout_s=1)
    await budget.release(grant.id, outcome="ok")


async def test_no_grant_in_time_is_busy_and_leaves_no_waiter_behind() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=1))
    held = await budget.acquire("a", timeout_s=1)
    with pytest.raises(ProviderBusy, match="no provider capacity within"):
        await budget.acquire("b", timeout_s=0.1)
    assert budget.waiting == 0
    await budget.release(held.id, outcome="ok")
    assert budget.in_flight == 0


async def test_a_grant_never_given_back_is_taken_back() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=1, grant_timeout_s=0.2))
    await budget.acquire("lost", timeout_s=1)  # its caller died
    started = time.monotonic()
    grant: Grant = await budget.acquire("b", timeout_s=2)
    assert 0.15 <= time.monotonic() - started <= 0.6
    await budget.release(grant.id, outcome="ok")
    assert budget.snapshot()["expired"] == 1


async def test_a_cancelled_waiter_gives_its_grant_back() -> None:
    budget = ProviderBudget(ProviderLimits(concurrency=1))
    held = await budget.acquire("a", timeout_s=1)
    task = asyncio.create_task(budget.acquire("b", timeout_s=5))
    await asyncio.sleep(0.02)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await budget.release(held.id, outcome="ok")
    assert budget.in_flight == 0 and budget.waiting == 0
    # an unused grant hands back its request too
    limited = ProviderBudget(ProviderLimits(requests_per_minute=60))  # a burst of 1
    grant = await limited.acquire("a", timeout_s=1)
    await limited.release(grant.id, outcome="unused")
    started = time.monotonic()
    again = await limited.acquire("a", timeout_s=2)
    assert time.monotonic() - started < 0.1
    await limited.release(again.id, outcome="ok")
