"""The adaptive in-flight limit without Ray, a database or wall time: a fake clock, and a model
pipeline whose completions follow from how much is admitted."""

from __future__ import annotations

import pytest

from pipeline.dispatch.admission import AdaptiveLimit, AdmissionConfig


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def run_windows(
    limit: AdaptiveLimit,
    clock: Clock,
    windows: int,
    *,
    capacity: float | None,
    base_s: float,
    spread: tuple[float, ...] = (1.0,),
    backlog: bool = True,
) -> list[int]:
    """Each window: the pipeline holds ``limit`` jobs (a backlog keeps it full) and completes
    ``min(limit / W0, capacity)`` per second; a job's time is its own (``base_s`` x a spread
    factor, the dependency's variation) plus its queueing when the pipeline is CPU-bound
    (Little's law: ``limit / throughput``)."""
    limits = []
    for _ in range(windows):
        admitted = limit.limit if backlog else min(limit.limit, 4)
        mean_factor = sum(spread) / len(spread)
        rate = admitted / (base_s * mean_factor)
        if capacity is not None:
            rate = min(rate, capacity)
        queueing = max(0.0, admitted / rate - base_s * mean_factor)
        n = int(rate * limit.config.window_s)
        limit.inflight(admitted)
        for i in range(n):
            limit.completed(base_s * spread[i % len(spread)] + queueing)
        clock.now += limit.config.window_s
        limits.append(limit.update())
    return limits


def test_a_cpu_bound_pipeline_converges_to_littles_law_at_the_tolerated_latency() -> None:
    # 20 jobs/s at most, 2 s per job unqueued: 40 in flight saturate it, 60 is the tolerated
    # 1.5 x latency; from below the limit grows to the knee, from above it comes down
    for start in (8, 32, 64):
        clock = Clock()
        limit = AdaptiveLimit(AdmissionConfig(initial=start, upper=256, floor=8), clock)
        limits = run_windows(limit, clock, 40, capacity=20.0, base_s=2.0, spread=(0.9, 1.0, 1.1))
        assert min(limits[-10:]) >= 40 and max(limits[-10:]) <= 80, (start, limits)


def test_the_limit_cuts_when_jobs_queue_and_says_why() -> None:
    clock = Clock()
    limit = AdaptiveLimit(AdmissionConfig(initial=32, upper=256), clock)
    run_windows(limit, clock, 1, capacity=20.0, base_s=2.0)  # unqueued: W0 = 2 s
    limit.limit = 256  # as if the bound had been in force
    run_windows(limit, clock, 1, capacity=20.0, base_s=2.0)
    # 256 in flight at 20/s: 12.8 s per job against 2 s unqueued, cut at most by half
    assert limit.limit == 128
    assert limit.status()["decision"] == "cut: queueing"
    assert limit.status()["completions_per_s"] == 20.0


def test_an_io_bound_pipeline_with_a_wide_latency_spread_is_not_throttled() -> None:
    # no CPU limit, the dependency takes 1-4 s: median/p10 > tolerance without any queue. A cut
    # that costs throughput is undone, so the limit never spirals down to the floor.
    clock = Clock()
    limit = AdaptiveLimit(AdmissionConfig(initial=64, upper=256, floor=8), clock)
    limits = run_windows(
        limit, clock, 40, capacity=None, base_s=1.0, spread=(1.0, 1.5, 2.5, 3.0, 4.0)
    )
    assert min(limits[5:]) >= 32, limits
    assert limits[-1] >= 64, limits  # it still grows where throughput follows


def test_the_limit_grows_only_when_reached_and_holds_without_enough_completions() -> None:
    clock = Clock()
    limit = AdaptiveLimit(AdmissionConfig(initial=16, upper=256), clock)
    assert run_windows(limit, clock, 3, capacity=None, base_s=0.5) == [20, 25, 32]
    quiet = AdaptiveLimit(AdmissionConfig(initial=16, upper=256), clock)
    run_windows(quiet, clock, 3, capacity=None, base_s=0.5, backlog=False)
    assert quiet.limit == 16 and quiet.decision == "hold"
    idle = AdaptiveLimit(AdmissionConfig(initial=16), clock)
    clock.now += 60
    assert idle.update() == 16 and idle.decision == "hold: too few completions"


@pytest.mark.parametrize(
    ("start", "floor", "upper", "expected"), [(2, 8, 256, 8), (999, 8, 64, 64)]
)
def test_the_limit_stays_within_the_floor_and_the_bound(
    start: int, floor: int, upper: int, expected: int
) -> None:
    clock = Clock()
    limit = AdaptiveLimit(AdmissionConfig(initial=start, floor=floor, upper=upper), clock)
    assert limit.limit == expected
    # a crushed pipeline (1 job/s, 30 s each): never below the floor, whatever it measures
    limits = run_windows(limit, clock, 20, capacity=1.0, base_s=1.0)
    assert min(limits) >= floor and max(limits) <= upper


def test_nonsense_hand_off_times_are_ignored() -> None:
    limit = AdaptiveLimit(AdmissionConfig(), Clock())
    for bad in (-1.0, float("nan"), float("inf")):
        limit.completed(bad)
    assert limit._window == []


def test_a_growth_that_adds_no_throughput_is_undone_and_growth_pauses() -> None:
    # the reference latency is polluted (every sample queued): the throughput check alone finds
    # the knee, 40 in flight at 20 jobs/s x 2 s
    clock = Clock()
    cfg = AdmissionConfig(initial=40, upper=256, tolerance=100.0, pause_windows=3)
    limit = AdaptiveLimit(cfg, clock)
    limits = run_windows(limit, clock, 3, capacity=20.0, base_s=2.0)
    assert limits == [50, 40, 40]
    assert limit.decision == "hold"
    assert max(run_windows(limit, clock, 20, capacity=20.0, base_s=2.0)) <= 50
