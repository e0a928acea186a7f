"""Intake first during a storm: the arrival rate heard through NOTIFY, and the Dispatcher keeping
only a trickle in flight while it is high — against real PostgreSQL, without Ray."""

from __future__ import annotations

import time
import uuid

import asyncpg

from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue
from pipeline.intake_priority import IntakePriority
from pipeline.scaling import BacklogReport
from tests.pipeline.test_dispatcher import Concurrency, _dispatcher
from tests.pipeline.test_dispatcher_isolation import _statuses, _wait_for


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
    assert not intake.active() and intake.limit(256) == 256  # 9 in the last second
    intake.notified("tenant-b")  # the tenth within one second
    assert intake.active() and intake.limit(256) == 2 and intake.activations == 1
    assert intake.limit(1) == 1  # never above what capacity allows
    clock.now += 2.9
    assert intake.active() and intake.rate() == 0  # the hold outlasts the storm
    clock.now += 0.2
    assert not intake.active() and intake.limit(256) == 256


def test_requeues_do_not_count_and_zero_turns_it_off() -> None:
    clock = Clock()
    intake = IntakePriority(rate_per_s=5, clock=clock)
    for _ in range(50):
        intake.notified("retry")  # the reaper putting jobs back is not intake
    assert not intake.active() and intake.rate() == 0
    off = IntakePriority(rate_per_s=0, clock=clock)
    for _ in range(1000):
        off.notified("tenant-a")
    assert not off.active() and off.limit(64) == 64 and off.activations == 0


async def _webhook_storm(pool: asyncpg.Pool, tenant_id: str, count: int) -> float:
    """``count`` jobs enqueued as the ingress does (own transaction, NOTIFY); returns the rate."""
    started = time.monotonic()
    for n in range(count):
        async with tenant_transaction(pool, tenant_id) as conn:
            await enqueue(
                conn,
                tenant_id=tenant_id,
                ticket_id=str(n),
                event="created",
                dedupe_key=uuid.uuid4().hex,
                payload={"ticket": {"id": str(n)}},
                trace_context=None,
                trace_id=None,
            )
    return count / (time.monotonic() - started)


async def test_a_storm_keeps_a_trickle_in_flight_and_capacity_returns_after_it(
    pool, database, make_tenant
) -> None:
    tenant = (await make_tenant("storm")).tenant_id
    work = Concurrency(pool, {tenant}, hold_s=0.2)
    reports: list[BacklogReport] = []
    dispatcher = _dispatcher(
        pool,
        database.service_url,
        work.submit,
        max_inflight=64,
        intake_priority_rate=10,
        intake_priority_inflight=2,
        intake_priority_hold_s=0.6,
    )
    dispatcher._on_backlog = reports.append
    await dispatcher.start()
    try:
        await _wait_for(lambda: _listening(dispatcher))
        rate = await _webhook_storm(pool, tenant, 80)
        assert rate > 20, f"the test's storm was too slow to be one ({rate:.0f}/s)"
        during = work.total_peak  # still inside the hold: the trickle is all that ran
        assert dispatcher.intake.active() and dispatcher.status()["intake_priority"] is True

        async def done() -> bool:
            return await _statuses(pool, tenant) == [("completed", "llm")] * 80

        await _wait_for(done)
    finally:
        await dispatcher.stop()
    # the trickle, plus what was claimed before the rate showed: rate x window arrivals
    assert 1 <= during <= 2 + 3
    assert work.total_peak > 5  # after the storm the full cap was used again
    assert dispatcher.intake.activations == 1
    assert any(r.intake_priority for r in reports)  # the pools were told to hold
    assert not reports[-1].intake_priority or dispatcher.intake.active()


async def _listening(dispatcher) -> bool:  # noqa: ANN001
    return bool(dispatcher.status()["listening"])
