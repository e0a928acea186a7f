"""The Dispatcher's core loop against real PostgreSQL, without Ray: the hand-off is a plain
async ``submit`` callable. Claim → submit → complete under the in-flight cap and the
per-tenant cap; a failed hand-off goes back with backoff and ends `failed` when out of
attempts while other tenants flow; an expired lease is re-queued by the reaper and the silent
worker's late answer is refused. (Poisoned and disabled tenants, the cap following running
replicas and recovery by a restarted dispatcher: ``test_dispatcher_isolation.py``.)"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable

import asyncpg

from db.pool import tenant_transaction
from db.repositories.enhancements import enqueue
from pipeline.dispatch.admission import AdmissionConfig
from pipeline.dispatch.dispatcher import ClaimedJob, Dispatcher, DispatcherConfig, retry_delay_s
from pipeline.observability.metrics import InMemoryMetrics
from tests.pipeline.dispatch.test_dispatcher_isolation import (
    _complete,
    _enqueue,
    _statuses,
    _wait_for,
)


def _dispatcher(
    pool: asyncpg.Pool, url: str, submit: Callable[[ClaimedJob], Awaitable[None]], **config
) -> Dispatcher:
    defaults = {"poll_s": 0.2, "reap_every_s": 0.3, "max_inflight": 64, "retry_base_s": 1.0}
    return Dispatcher(pool, submit, listen_url=url, config=DispatcherConfig(**(defaults | config)))


class Concurrency:
    """Counts this test's jobs in flight per tenant; the peaks are what the caps must bound."""

    def __init__(self, pool: asyncpg.Pool, tenants: set[str], hold_s: float) -> None:
        self.pool, self.tenants, self.hold_s = pool, tenants, hold_s
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.total_now = 0
        self.total_peak = 0
        self.gates: dict[str, asyncio.Event] = {}  # a tenant's jobs wait for theirs to open

    async def submit(self, job: ClaimedJob) -> None:
        if job.tenant_id not in self.tenants:
            raise RuntimeError("not this test's job")  # back to the queue, as a failed hand-off
        self.now[job.tenant_id] += 1
        self.total_now += 1
        self.peak[job.tenant_id] = max(self.peak[job.tenant_id], self.now[job.tenant_id])
        self.total_peak = max(self.total_peak, self.total_now)
        try:
            if gate := self.gates.get(job.tenant_id):
                await gate.wait()
            await asyncio.sleep(self.hold_s)
            assert await _complete(self.pool, job)
        finally:
            self.now[job.tenant_id] -= 1
            self.total_now -= 1


async def test_claimed_jobs_are_submitted_and_completed_within_the_inflight_cap(
    pool, database, make_tenant
) -> None:
    tenant = (await make_tenant("cap")).tenant_id
    await _enqueue(pool, tenant, 10)
    work = Concurrency(pool, {tenant}, hold_s=0.3)
    dispatcher = _dispatcher(pool, database.service_url, work.submit, max_inflight=3)
    assert dispatcher.inflight_limit == 3
    await dispatcher.start()
    try:

        async def done() -> bool:
            return await _statuses(pool, tenant) == [("completed", "llm")] * 10

        await _wait_for(done)
    finally:
        await dispatcher.stop()
    assert work.total_peak == 3  # the cap was used, and never exceeded
    assert dispatcher.claimed_total >= 10
    async with tenant_transaction(pool, tenant) as conn:
        attempts = await conn.fetch(
            "SELECT attempts FROM enhancements WHERE tenant_id = $1", tenant
        )
    assert {r["attempts"] for r in attempts} == {1}  # one claim each, no hand-off retried


async def test_the_per_tenant_cap_holds_while_both_tenants_flow(
    pool, database, make_tenant
) -> None:
    a, b = (await make_tenant("pa")).tenant_id, (await make_tenant("pb")).tenant_id
    for tenant in (a, b):
        await _enqueue(pool, tenant, 6)
    work = Concurrency(pool, {a, b}, hold_s=0.3)
    dispatcher = _dispatcher(pool, database.service_url, work.submit, per_tenant_cap=2)
    await dispatcher.start()
    try:

        async def done() -> bool:
            statuses = [await _statuses(pool, t) for t in (a, b)]
            return statuses == [[("completed", "llm")] * 6] * 2

        await _wait_for(done)
    finally:
        await dispatcher.stop()
    assert (work.peak[a], work.peak[b]) == (2, 2)
    assert work.total_peak == 4  # both tenants ran side by side


async def test_a_failed_handoff_is_retried_with_backoff_and_fails_when_out_of_attempts(
    pool, database, make_tenant
) -> None:
    flaky, fine = (await make_tenant("flaky")).tenant_id, (await make_tenant("fine")).tenant_id
    async with tenant_transaction(pool, flaky) as conn:
        queued = await enqueue(
            conn,
            tenant_id=flaky,
            ticket_id="1",
            event="created",
            dedupe_key=uuid.uuid4().hex,
            payload={"ticket": {"id": "1"}},
            trace_context=None,
            trace_id=None,
            max_attempts=2,
            notify=False,
        )
    await _enqueue(pool, fine, 4)
    handoffs: list[float] = []

    async def submit(job: ClaimedJob) -> None:
        if job.tenant_id == flaky:
            handoffs.append(time.monotonic())
            raise RuntimeError("replica crashed")
        if job.tenant_id != fine:
            raise RuntimeError("not this test's job")
        assert await _complete(pool, job)

    dispatcher = _dispatcher(pool, database.service_url, submit, retry_base_s=1.0)
    await dispatcher.start()
    try:

        async def settled() -> bool:
            return (
                await _statuses(pool, flaky) == [("failed", None)]
                and await _statuses(pool, fine) == [("completed", "llm")] * 4
            )

        await _wait_for(settled)
    finally:
        await dispatcher.stop()
    assert len(handoffs) == 2  # max_attempts: the first hand-off and one retry
    # the retry waited for its backoff (retry_delay_s(1, 1.0) = 1 s; timer slack allowed)
    assert handoffs[1] - handoffs[0] >= retry_delay_s(1, 1.0) - 0.1
    assert dispatcher.handoff_failures >= 2
    async with tenant_transaction(pool, flaky) as conn:
        row = await conn.fetchrow(
            "SELECT attempts, error FROM enhancements WHERE id = $1", queued.id
        )
    assert row["attempts"] == 2
    assert row["error"] == "hand-off failed: RuntimeError: replica crashed"


async def test_an_expired_lease_is_requeued_and_the_silent_worker_is_fenced(
    pool, database, make_tenant
) -> None:
    tenant = (await make_tenant("lease")).tenant_id
    await _enqueue(pool, tenant, 1)
    silent: list[ClaimedJob] = []
    release = asyncio.Event()

    async def submit(job: ClaimedJob) -> None:
        if job.tenant_id != tenant:
            raise RuntimeError("not this test's job")
        if not silent:  # the first holder goes quiet without an error (a lost worker)
            silent.append(job)
            await release.wait()
            return
        assert await _complete(pool, job)

    dispatcher = _dispatcher(pool, database.service_url, submit, lease_s=1)
    await dispatcher.start()
    try:

        async def done() -> bool:
            return await _statuses(pool, tenant) == [("completed", "llm")]

        await _wait_for(done)
    finally:
        await dispatcher.stop()
        release.set()
    async with tenant_transaction(pool, tenant) as conn:
        attempts = await conn.fetchval(
            "SELECT attempts FROM enhancements WHERE id = $1", uuid.UUID(silent[0].id)
        )
    assert attempts == 2  # re-queued by the reaper, claimed again
    assert not await _complete(pool, silent[0])  # the lost worker's late answer is refused


async def test_stop_right_after_a_job_finishes_ends_the_loop(pool, database, make_tenant) -> None:
    # A finishing job wakes the idle loop; `stop()` in the next breath used to lose its
    # cancellation inside Python 3.11's asyncio.wait_for (the wake-up had already completed
    # the wait), so the loop ran on and `stop()` never returned: a hung test in CI, and a
    # dispatcher that would outlive its own stop in production.
    tenant = (await make_tenant("stop")).tenant_id
    for round_ in range(3):
        await _enqueue(pool, tenant, 1)
        entered, release, finished = asyncio.Event(), asyncio.Event(), asyncio.Event()

        async def submit(
            job: ClaimedJob,
            entered: asyncio.Event = entered,
            release: asyncio.Event = release,
            finished: asyncio.Event = finished,
        ) -> None:
            if job.tenant_id != tenant:
                raise RuntimeError("not this test's job")
            entered.set()
            await release.wait()
            assert await _complete(pool, job)
            finished.set()  # the dispatcher's wake-up follows in the same step

        # a long poll: the loop sits in its wait when the job finishes
        dispatcher = _dispatcher(pool, database.service_url, submit, poll_s=30, reap_every_s=60)
        await dispatcher.start()
        try:
            async with asyncio.timeout(20):
                await entered.wait()
            await asyncio.sleep(0.5)  # the claim cycle is over; the loop waits
            release.set()
            async with asyncio.timeout(20):
                await finished.wait()
        finally:
            release.set()
            # asyncio.wait does not cancel what it waits for: a stop() that would never return
            # fails here instead of hanging the test (or being rescued by its cancellation)
            stopping = asyncio.create_task(dispatcher.stop())
            await asyncio.wait({stopping}, timeout=20)
            for task in (stopping, *dispatcher._tasks):
                task.cancel()  # only if the bug is back: leave nothing running behind us
        assert stopping.done() and not stopping.cancelled(), f"stop() hung (round {round_})"
        assert not dispatcher.running, f"the loop outlived stop() (round {round_})"


async def test_adaptive_admission_starts_low_grows_with_completions_and_reports_its_state(
    pool, database, make_tenant
) -> None:
    # the hand-off is pure waiting (no CPU limit), so each window the limit is reached and jobs
    # do not queue: the limit grows from its start, and the peak in flight follows it
    tenant = (await make_tenant("admit")).tenant_id
    await _enqueue(pool, tenant, 80)
    work = Concurrency(pool, {tenant}, hold_s=0.2)
    metrics = InMemoryMetrics()
    admission = AdmissionConfig(floor=2, upper=64, initial=4, window_s=0.6, min_samples=3)
    seen: list[tuple[int, int]] = []  # (jobs in flight with this one, the limit then)

    async def submit(job: ClaimedJob) -> None:
        seen.append((work.total_now + 1, dispatcher.inflight_limit))
        await work.submit(job)

    dispatcher = Dispatcher(
        pool,
        submit,
        listen_url=database.service_url,
        config=DispatcherConfig(poll_s=0.2, reap_every_s=0.3, admission=admission),
        metrics=metrics,
    )
    assert dispatcher.inflight_limit == 4 and dispatcher.replica_cap == 256
    await dispatcher.start()
    try:

        async def grown() -> bool:
            return dispatcher.inflight_limit > 6

        await _wait_for(grown)

        async def done() -> bool:
            return await _statuses(pool, tenant) == [("completed", "llm")] * 80

        await _wait_for(done)
    finally:
        await dispatcher.stop()
    status = dispatcher.status()["admission"]
    assert status["decision"].startswith(("grow", "hold", "undo growth"))
    assert status["completions_per_s"] > 0 and status["handoff_reference_s"] >= 0.2
    assert seen[0][1] == 4
    assert all(n <= 4 for n, limit in seen if limit == 4)  # the start value held, no more
    assert work.total_peak > 4  # more were admitted once the limit grew
    gauge = metrics.gauges[("ai_agents_dispatch_inflight_limit", ())]
    assert gauge > 4
