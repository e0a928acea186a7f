"""Circuit breaker state machine, driven by a fake clock instead of sleeping."""

from __future__ import annotations

import pytest

from pipeline.llm.circuit_breaker import CircuitBreaker, CircuitOpenError


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make(clock: FakeClock, **kw: object) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(clock=clock, on_state_change=lambda a, b: changes.append((a, b)), **kw)  # type: ignore[arg-type]
    return breaker, changes


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert breaker.allow()
        breaker.record_failure()


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    breaker, changes = make(clock, failure_threshold=3, recovery_timeout_s=30)
    fail(breaker, 2)
    assert breaker.state == "closed" and breaker.state_value == 0
    fail(breaker, 1)
    assert breaker.state == "open" and breaker.state_value == 2
    assert not breaker.allow()
    assert breaker.retry_in_s() == pytest.approx(30)
    assert changes == [("closed", "open")]


def test_success_resets_the_consecutive_count(clock: FakeClock) -> None:
    breaker, _ = make(clock, failure_threshold=3)
    fail(breaker, 2)
    assert breaker.allow()
    breaker.record_success()
    fail(breaker, 2)
    assert breaker.state == "closed"


def test_half_open_probe_success_closes(clock: FakeClock) -> None:
    breaker, changes = make(clock, failure_threshold=1, recovery_timeout_s=10)
    fail(breaker, 1)
    clock.now += 9.9
    assert breaker.state == "open"
    clock.now += 0.1
    assert breaker.state == "half_open" and breaker.state_value == 1
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.record_success()
    assert breaker.state == "closed" and breaker.allow()
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_half_open_probe_failure_reopens_for_a_full_period(clock: FakeClock) -> None:
    breaker, _ = make(clock, failure_threshold=2, recovery_timeout_s=10)
    fail(breaker, 2)
    clock.now += 10
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.now += 9
    assert not breaker.allow()
    clock.now += 1
    assert breaker.state == "half_open"


def test_half_open_allows_configured_number_of_probes(clock: FakeClock) -> None:
    breaker, _ = make(clock, failure_threshold=1, recovery_timeout_s=1, half_open_max_calls=2)
    fail(breaker, 1)
    clock.now += 1
    assert breaker.allow() and breaker.allow() and not breaker.allow()
    breaker.release()  # a cancelled probe gives its slot back
    assert breaker.allow()


def test_guard_raises_with_time_left(clock: FakeClock) -> None:
    breaker, _ = make(clock, failure_threshold=1, recovery_timeout_s=5)
    breaker.guard()
    breaker.record_failure()
    clock.now += 2
    with pytest.raises(CircuitOpenError) as exc:
        breaker.guard()
    assert exc.value.retry_in_s == pytest.approx(3)


def test_callback_errors_do_not_break_the_breaker(clock: FakeClock) -> None:
    def boom(old: str, new: str) -> None:
        raise RuntimeError("metrics down")

    breaker = CircuitBreaker(failure_threshold=1, clock=clock, on_state_change=boom)
    fail(breaker, 1)
    assert breaker.state == "open"
    breaker.reset()
    assert breaker.state == "closed" and breaker.consecutive_failures == 0


def test_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(failure_threshold=0)
    with pytest.raises(ValueError):
        CircuitBreaker(half_open_max_calls=0)
