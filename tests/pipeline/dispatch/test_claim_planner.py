"""The claim decision on its own, against real PostgreSQL, without the Dispatcher's loop: which
tenants stay "pending" (may be topped up to their share when the in-flight limit is full), and
that a pending tenant left out after a failed claim stays pending and is claimed once it is
back. The loop-level behaviour (a tenant becoming active gets its share at once, a poisoned
tenant does not stall the others) is in ``test_fair_share_now.py`` and
``test_dispatcher_isolation.py``."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import asyncpg

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from pipeline.dispatch.claim_planner import ClaimPlanner
from pipeline.dispatch.intake_priority import RETRY_PAYLOAD, IntakePriority
from pipeline.dispatch.scaling import BacklogReport
from pipeline.observability.metrics import InMemoryMetrics
from tests.job_rows import complete_job, enqueue_jobs
from tests.pipeline.dispatch.test_dispatcher_isolation import Poison, _statuses
from tests.pipeline.dispatch.test_dispatcher_isolation import poison as poison  # the fixture

LIMIT = 4
# the limit is full of another tenant's jobs: nothing is claimed across tenants, only the
# below-share top-up runs; with the tested tenant pending the share is 4 // 2 = 2
FULL = Counter({"someone-else": LIMIT})


def _planner(pool: asyncpg.Pool, metrics: InMemoryMetrics, quarantine_s: float) -> ClaimPlanner:
    async def no_backlog() -> BacklogReport:
        raise AssertionError("only the degraded claim across tenants measures the backlog")

    return ClaimPlanner(
        pool,
        f"test-planner-{uuid.uuid4().hex[:8]}",
        intake=IntakePriority(rate_per_s=0.0),
        metrics=metrics,
        measure_backlog=no_backlog,
        batch=64,
        lease_s=300,
        per_tenant_cap=None,
        tenant_quarantine_s=quarantine_s,
    )


async def _enqueue_quietly(pool: asyncpg.Pool, tenant: str, count: int, first: int) -> None:
    """Jobs without a NOTIFY: the planner hears of them only if told."""
    async with tenant_transaction(pool, tenant) as conn:
        await enqueue_jobs(conn, tenant, count, first=first)


async def _finish(pool: asyncpg.Pool, rows: list[asyncpg.Record]) -> None:
    """Complete what the test claimed, so no other test's Dispatcher re-queues and meets it."""
    for row in rows:
        assert await complete_job(pool, row["tenant_id"], row["id"], row["lease_token"])


async def test_a_tenant_whose_top_up_comes_up_short_is_not_claimed_until_heard_from_again(
    pool, make_tenant
) -> None:
    tenant = (await make_tenant("short")).tenant_id
    planner = _planner(pool, InMemoryMetrics(), quarantine_s=30.0)
    claimed: list[asyncpg.Record] = []
    try:
        await _enqueue_quietly(pool, tenant, 1, first=0)
        planner.notified(tenant)
        first = await planner.claim(LIMIT, 0, FULL)
        claimed += first
        assert [r["tenant_id"] for r in first] == [tenant]  # 1 of a share of 2: came up short

        await _enqueue_quietly(pool, tenant, 1, first=1)
        assert await planner.claim(LIMIT, 0, FULL) == []  # no longer pending: not even asked
        assert await _statuses(pool, tenant) == [("queued", None), ("running", None)]

        planner.notified(RETRY_PAYLOAD)  # a re-queue's NOTIFY names no tenant
        assert await planner.claim(LIMIT, 0, FULL) == []

        planner.backlog_measured({tenant: 1})  # the backlog measurement makes it pending again
        again = await planner.claim(LIMIT, 0, Counter({"someone-else": LIMIT, tenant: 1}))
        claimed += again
        assert [r["tenant_id"] for r in again] == [tenant]
        assert await _statuses(pool, tenant) == [("running", None)] * 2
    finally:
        await _finish(pool, claimed)


async def test_a_quarantined_tenant_stays_pending_and_is_claimed_once_it_is_back(
    pool, make_tenant, poison: Poison
) -> None:
    tenant = (await make_tenant("quarantined")).tenant_id
    metrics = InMemoryMetrics()
    planner = _planner(pool, metrics, quarantine_s=0.5)
    claimed: list[asyncpg.Record] = []
    try:
        await _enqueue_quietly(pool, tenant, 2, first=0)
        await poison.add(tenant)
        planner.notified(tenant)
        assert await planner.claim(LIMIT, 0, FULL) == []  # the claim failed
        assert planner.tenant_failures == 1 and planner.quarantined == [tenant]
        assert metrics.counters[(mc.DISPATCH_FAILURES.name, (("tenant", tenant),))] == 1

        # the failed claim came up short too, so the tenant left the pending set; its next
        # webhook (or the Dispatcher's next backlog measurement) makes it pending again
        planner.notified(tenant)
        await poison.repair()
        assert await planner.claim(LIMIT, 0, FULL) == []  # left out: not asked while it waits
        assert planner.tenant_failures == 1

        await asyncio.sleep(0.6)  # the quarantine is over; nobody notified in between
        back = await planner.claim(LIMIT, 0, FULL)
        claimed += back
        assert [r["tenant_id"] for r in back] == [tenant, tenant]  # its whole share of 2
        assert await _statuses(pool, tenant) == [("running", None)] * 2
    finally:
        await _finish(pool, claimed)
