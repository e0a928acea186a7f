"""Intake first during a storm: the arrival rate heard through NOTIFY, and the Dispatcher keeping
only a trickle in flight while it is high — against real PostgreSQL, without Ray."""

from __future__ import annotations

import time

import asyncpg

from pipeline.dispatch.intake_priority import IntakePriority
from pipeline.dispatch.scaling import BacklogReport
from tests.pipeline.dispatch.test_dispatcher import Concurrency, _dispatcher
from tests.pipeline.dispatch.test_dispatcher_isolation import _enqueue, _statuses, _wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_priority_starts_at_the_rate_and_holds_after_it_falls() -> None:
    clock = Clock()
    intake = IntakePriority(rate_per_s=10, inflight=2, hold_s=3.0, window_s=1.0, clock=clock)
    for _ in range(9):
        intake.notified("tenant-a")
        clock.now += 0.1
    assert not intake.active()  # 9 in the last second
    intake.notified("tenant-a")  # the tenth within one second
    assert intake.active() and intake.activations == 1
    assert intake.storming("tenant-a")
    clock.now += 2.9
    assert intake.active() and intake.rate() == 0  # the hold outlasts the storm
    clock.now += 0.2
    assert not intake.active() and not intake.storming("tenant-a")


def test_a_tenant_sending_little_during_a_storm_is_quiet_and_listed() -> None:
    clock = Clock()
    intake = IntakePriority(rate_per_s=40, hold_s=3.0, clock=clock)  # tenants storm at 4/s
    intake.notified("quiet-b")
    for _ in range(20):
        intake.notified("flood-a")
        clock.now += 0.01
    assert intake.active() and intake.storming("flood-a")
    clock.now += 1.0
    intake.notified("quiet-b")  # one a second: never a storm of its own
    assert not intake.storming("quiet-b")
    assert intake.quiet_tenants() == ["quiet-b"]
    clock.now += 3.1  # the storm is over: nobody is held back, nobody needs listing
    assert not intake.active() and intake.quiet_tenants() == []


def test_requeues_do_not_count_and_zero_turns_it_off() -> None:
    clock = Clock()
    intake = IntakePriority(rate_per_s=5, clock=clock)
    for _ in range(50):
        intake.notified("retry")  # the reaper putting jobs back is not intake
    assert not intake.active() and intake.rate() == 0
    off = IntakePriority(rate_per_s=0, clock=clock)
    for _ in range(1000):
        off.notified("tenant-a")
    assert not off.active() and not off.storming("tenant-a") and off.activations == 0


async def _webhook_storm(pool: asyncpg.Pool, tenant_id: str, count: int) -> float:
    """``count`` jobs enqueued as the ingress does (own transaction, NOTIFY); returns the rate."""
    started = time.monotonic()
    await _enqueue(pool, tenant_id, count, as_webhooks=True)
    return count / (time.monotonic() - started)


async def test_a_storm_keeps_a_trickle_in_flight_and_quiet_tenants_flow(
    pool, database, make_tenant
) -> None:
    a, b = (await make_tenant("storm")).tenant_id, (await make_tenant("quiet")).tenant_id
    work = Concurrency(pool, {a, b}, hold_s=0.2)
    reports: list[BacklogReport] = []
    dispatcher = _dispatcher(
        pool,
        database.service_url,
        work.submit,
        max_inflight=64,
        intake_priority_rate=10,
        intake_priority_inflight=2,
        intake_priority_hold_s=2.0,
    )
    dispatcher._on_backlog = reports.append
    await dispatcher.start()
    try:
        await _wait_for(lambda: _listening(dispatcher))
        rate = await _webhook_storm(pool, a, 80)
        assert rate > 20, f"the test's storm was too slow to be one ({rate:.0f}/s)"
        during = work.peak[a]  # still inside the hold: the trickle is all that ran
        assert dispatcher.status()["intake_priority"] is True and dispatcher.intake.storming(a)

        await _webhook_storm(pool, b, 1)  # B's one ticket, while A is held back

        async def b_done() -> bool:
            return await _statuses(pool, b) == [("completed", "llm")]

        await _wait_for(b_done, timeout_s=10)
        assert dispatcher.intake.storming(a), "B waited for A's storm to end"
        a_done_then = (await _statuses(pool, a)).count(("completed", "llm"))

        async def done() -> bool:
            return await _statuses(pool, a) == [("completed", "llm")] * 80

        await _wait_for(done)
    finally:
        await dispatcher.stop()
    # the trickle, plus what was claimed before the rate showed: rate x window arrivals
    assert 1 <= during <= 2 + 3
    assert a_done_then < 80
    assert work.peak[a] > 5  # after the storm the full cap was used again
    assert dispatcher.intake.activations == 1
    assert any(r.intake_priority for r in reports)  # the pools were told to hold


async def _listening(dispatcher) -> bool:  # noqa: ANN001
    return bool(dispatcher.status()["listening"])
