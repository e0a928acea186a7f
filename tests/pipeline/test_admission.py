"""Admission follows the pipeline's own queueing: the rule with a clock of our own, then the
Dispatcher against real PostgreSQL with a 'pipeline' of a fixed number of workers."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from db.pool import tenant_transaction
from db.repositories.enhancements import complete
from pipeline.admission import AdmissionLimit
from pipeline.dispatcher import ClaimedJob, EnhancementResult
from tests.pipeline.test_dispatcher import _dispatcher
from tests.pipeline.test_dispatcher_isolation import _enqueue, _statuses, _wait_for


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _feed(limit: AdmissionLimit, clock: Clock, queued_s: float, inflight: int) -> None:
    clock.now += 1.0
    for _ in range(limit.min_samples):
        limit.observe(queued_s, inflight, ceiling=256)


def test_queueing_shrinks_the_limit_and_headroom_grows_it_within_bounds() -> None:
    clock = Clock()
    limit = AdmissionLimit(target_s=0.5, initial=100, floor=4, clock=clock)
    _feed(limit, clock, queued_s=3.0, inflight=100)
    assert limit.current(256) == 80 and limit.last_p90_s == 3.0
    for _ in range(30):
        _feed(limit, clock, queued_s=3.0, inflight=100)
    assert limit.current(256) == 4  # never below the floor
    _feed(limit, clock, queued_s=0.05, inflight=4)  # little queueing, limit in use: grow
    assert limit.current(256) == 5
    for _ in range(40):
        _feed(limit, clock, queued_s=0.05, inflight=limit.current(256))
    assert limit.current(256) == 256  # never above the capacity cap
    assert limit.current(64) == 64  # and follows it down when replicas go


def test_an_unused_limit_does_not_grow_and_one_adjustment_per_period() -> None:
    clock = Clock()
    limit = AdmissionLimit(target_s=0.5, initial=32, clock=clock)
    _feed(limit, clock, queued_s=0.0, inflight=3)  # idle: no evidence that more would help
    assert limit.current(256) == 32
    clock.now += 1.0
    for _ in range(50):  # a burst of slow samples within one period: one decrease only
        limit.observe(5.0, 32, 256)
    assert limit.current(256) == 25 and limit.adjustments == 1
    off = AdmissionLimit(target_s=0, clock=clock)
    _feed(off, clock, queued_s=60.0, inflight=256)
    assert off.current(256) == 256


class Pipeline:
    """``workers`` jobs worked on at once for ``work_s`` each; the rest wait their turn, as
    jobs wait in Serve's and the database pool's queues when too many are admitted."""

    def __init__(self, pool: asyncpg.Pool, workers: int, work_s: float) -> None:
        self.pool, self.work_s = pool, work_s
        self.slots = asyncio.Semaphore(workers)
        self.inflight = 0
        self.peak_late = 0  # most jobs in flight once the limit had settled
        self.settled = False

    async def submit(self, job: ClaimedJob) -> EnhancementResult:
        self.inflight += 1
        if self.settled:
            self.peak_late = max(self.peak_late, self.inflight)
        try:
            async with self.slots:
                await asyncio.sleep(self.work_s)
                async with tenant_transaction(self.pool, job.tenant_id) as conn:
                    assert await complete(
                        conn,
                        uuid.UUID(job.id),
                        uuid.UUID(job.lease_token),
                        outcome="llm",
                        stage_timings={},
                        context_sources=None,
                        model=None,
                        prompt_tokens=0,
                        completion_tokens=0,
                        cost_usd=0.0,
                        note_id=None,
                    )
            return EnhancementResult("completed", stage_s=self.work_s)
        finally:
            self.inflight -= 1


async def test_the_dispatcher_admits_what_the_pipeline_works_on_without_queueing(
    pool, database, make_tenant
) -> None:
    tenant = (await make_tenant("admit")).tenant_id
    await _enqueue(pool, tenant, 300)
    # queueing = (in flight - 6) / 6 x 0.1 s: the 0.1 s target is crossed at ~12 in flight
    pipeline = Pipeline(pool, workers=6, work_s=0.1)
    dispatcher = _dispatcher(pool, database.service_url, pipeline.submit, max_inflight=64)
    dispatcher.admission = AdmissionLimit(target_s=0.1, initial=48, period_s=0.1)
    assert dispatcher.inflight_limit == 48
    await dispatcher.start()
    try:

        async def settled() -> bool:
            return dispatcher.inflight_limit <= 24

        await _wait_for(settled)
        pipeline.settled = True

        async def done() -> bool:
            return await _statuses(pool, tenant) == [("completed", "llm")] * 300

        await _wait_for(done, timeout_s=60)
    finally:
        await dispatcher.stop()
    assert dispatcher.admission.adjustments >= 3
    assert 4 <= dispatcher.inflight_limit <= 24 and dispatcher.capacity_limit == 64
    assert pipeline.peak_late <= 24  # what was admitted after settling, never the whole cap
    assert dispatcher.status()["admission_queue_p90_s"] is not None
