"""When the in-flight limit is full of one tenant's jobs, a tenant that becomes active is
claimed up to an equal share at once — against real PostgreSQL, without Ray."""

from __future__ import annotations

import asyncio

from tests.job_rows import fail_other_tenants_jobs
from tests.pipeline.dispatch.test_dispatcher import Concurrency, _dispatcher
from tests.pipeline.dispatch.test_dispatcher_isolation import _enqueue, _statuses, _wait_for
from tests.pipeline.dispatch.test_intake_priority import _listening, _webhook_storm


async def test_a_tenant_that_becomes_active_is_claimed_at_once_when_the_limit_is_full(
    pool, database, make_tenant
) -> None:
    a, b = (await make_tenant("full")).tenant_id, (await make_tenant("late")).tenant_id
    # another test's leftover backlog would take its fair share of the 4 slots A must fill
    await fail_other_tenants_jobs(database.owner_url, keep={a, b})
    await _enqueue(pool, a, 12)
    work = Concurrency(pool, {a, b}, hold_s=0.05)
    work.gates[a] = asyncio.Event()  # A's jobs hold every slot until the test lets them go
    # polls rarely: only B's NOTIFY can wake the loop while A's jobs hold every slot
    dispatcher = _dispatcher(pool, database.service_url, work.submit, max_inflight=4, poll_s=30)
    await dispatcher.start()
    try:
        await _wait_for(lambda: _listening(dispatcher))

        async def full() -> bool:
            return work.now[a] == 4

        await _wait_for(full)
        await _webhook_storm(pool, b, 1)  # B's first ticket, while A holds every slot

        async def b_done() -> bool:
            return await _statuses(pool, b) == [("completed", "llm")]

        await _wait_for(b_done, timeout_s=10)  # while all of A's jobs were still held
        assert work.now[a] == 4 and work.total_peak == 5  # over by B's missing share only
        work.gates[a].set()

        async def done() -> bool:
            statuses = [await _statuses(pool, t) for t in (a, b)]
            return statuses == [[("completed", "llm")] * 12, [("completed", "llm")]]

        await _wait_for(done)
    finally:
        work.gates[a].set()
        await dispatcher.stop()
    assert work.peak[b] == 1 and work.total_peak == 5
