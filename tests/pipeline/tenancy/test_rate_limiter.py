"""The token-bucket maths and its two users on a hand-driven clock: the intake throttle admits
or refuses (never goes into debt), the tenant rate limiter books tokens ahead (waits grow)."""

from __future__ import annotations

import pytest

from pipeline.tenancy.rate_limiter import RateLimiter, TokenBucket
from serve_app.guards.intake_throttle import IntakeThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_try_take_spends_the_burst_then_refuses_without_debt() -> None:
    bucket = TokenBucket.full(rate_per_s=1.0, capacity=2.0, now=0.0)
    assert [bucket.try_take(0.0), bucket.try_take(0.0)] == [0.0, 0.0]
    assert bucket.try_take(0.0) == pytest.approx(1.0)
    assert bucket.try_take(0.25) == pytest.approx(0.75)  # refused calls took nothing
    assert bucket.try_take(1.0) == 0.0
    assert bucket.tokens == pytest.approx(0.0)


def test_reserve_books_ahead_so_waits_queue_up() -> None:
    bucket = TokenBucket.full(rate_per_s=2.0, capacity=1.0, now=0.0)
    assert [bucket.reserve(0.0) for _ in range(4)] == pytest.approx([0.0, 0.5, 1.0, 1.5])
    assert bucket.tokens == pytest.approx(-3.0)
    assert bucket.reserve(10.0) == 0.0  # refill is capped at capacity, then one is spent
    assert bucket.tokens == pytest.approx(0.0)


def test_intake_throttle_bursts_ten_seconds_of_traffic_then_gives_retry_after() -> None:
    clock = Clock()
    throttle = IntakeThrottle(clock=clock)
    answers = [throttle.try_acquire("acme", 60) for _ in range(11)]  # 1/s, burst of 10
    assert answers[:10] == [0.0] * 10 and answers[10] == pytest.approx(1.0)
    assert throttle.try_acquire("globex", 60) == 0.0  # another tenant has its own bucket
    clock.now += 0.5
    assert throttle.try_acquire("acme", 60) == pytest.approx(0.5)
    clock.now += 0.5
    assert throttle.try_acquire("acme", 60) == 0.0
    # A tiny limit still allows one request at a time (capacity never drops below one).
    assert throttle.try_acquire("tiny", 1) == 0.0
    assert throttle.try_acquire("tiny", 1) == pytest.approx(60.0)


def test_intake_throttle_applies_a_changed_limit_to_the_time_since_the_last_call() -> None:
    clock = Clock()
    throttle = IntakeThrottle(clock=clock)
    for _ in range(10):
        assert throttle.try_acquire("acme", 60) == 0.0
    clock.now += 1.0
    # 600/min: the second earned 10 tokens at the new rate, capped by the new burst (100).
    assert [throttle.try_acquire("acme", 600) for _ in range(11)][-1] == pytest.approx(0.1)


def test_tenant_rate_limiter_buckets_are_per_tenant_and_budget() -> None:
    clock = Clock()
    buckets = RateLimiter(clock=clock)
    # 60/min: burst of 10, then each reservation waits one more second.
    waits = [buckets.reserve("acme", "llm", 60) for _ in range(12)]
    assert waits[:10] == [0.0] * 10 and waits[10:] == pytest.approx([1.0, 2.0])
    assert buckets.reserve("acme", "sdp", 60) == 0.0
    assert buckets.reserve("globex", "llm", 60) == 0.0
    # The debt (-2 tokens) carries over to a new limit: the next token is 3 tokens away.
    assert buckets.reserve("acme", "llm", 6, burst=3) == pytest.approx(30.0)
    clock.now += 25.0  # earns 2.5 of the 3
    assert buckets.reserve("acme", "llm", 6, burst=3) == pytest.approx(15.0)


def test_tenant_rate_limiter_restarts_the_interval_when_the_limit_changes() -> None:
    clock = Clock()
    buckets = RateLimiter(clock=clock)
    for _ in range(10):
        buckets.reserve("acme", "llm", 60)
    clock.now += 5.0
    # New limit: the 5 s since the last call earn nothing; the balance (0) is kept.
    assert buckets.reserve("acme", "llm", 120) == pytest.approx(0.5)
