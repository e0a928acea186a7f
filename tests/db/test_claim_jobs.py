"""`app_claim_jobs`: round-robin across tenants under the per-tenant in-flight cap.

Runs inside one rolled-back transaction so no queued job outlives the test (a later dispatcher
in the same session would otherwise pick them up).
"""

from __future__ import annotations

from collections import Counter

import asyncpg

from pipeline.tenancy.config import TenantSettings
from tests.job_rows import enqueue_jobs


async def _enqueue(conn: asyncpg.Connection, tenant_id: str, count: int) -> None:
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", tenant_id)
    await enqueue_jobs(conn, tenant_id, count)


async def _claim(conn: asyncpg.Connection, cap: int, limit: int = 1000) -> list[str]:
    rows = await conn.fetch("SELECT * FROM app_claim_jobs('test-owner', $1, $2, 60)", limit, cap)
    return [r["tenant_id"] for r in rows]


async def _set_aside_other_tests_jobs(conn: asyncpg.Connection) -> None:
    """Claim whatever else is queued in the session database (undone by the rollback)."""
    await _claim(conn, 1_000_000, 1_000_000)


async def test_tenant_max_inflight_overrides_the_service_cap(pool, make_tenant) -> None:
    capped = await make_tenant("capped", settings=TenantSettings(max_inflight=2))
    roomy = await make_tenant("roomy", settings=TenantSettings(max_inflight=5))
    default = await make_tenant("dflt")
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await _set_aside_other_tests_jobs(conn)
            for tenant in (capped.tenant_id, roomy.tenant_id, default.tenant_id):
                await _enqueue(conn, tenant, 8)
            first = Counter(await _claim(conn, 3))
            assert first == {capped.tenant_id: 2, roomy.tenant_id: 5, default.tenant_id: 3}
            # running jobs count against the cap: nothing more until some finish
            assert await _claim(conn, 3) == []
            # a larger service cap moves only the tenant without its own setting
            assert Counter(await _claim(conn, 6)) == {default.tenant_id: 3}
        finally:
            await tx.rollback()


async def test_claims_interleave_tenants_round_robin(pool, make_tenant) -> None:
    a, b = await make_tenant("rra"), await make_tenant("rrb")
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await _set_aside_other_tests_jobs(conn)
            await _enqueue(conn, a.tenant_id, 6)  # a's backlog is older than b's
            await _enqueue(conn, b.tenant_id, 2)
            # four slots: b gets its share although all of a's jobs are older
            assert Counter(await _claim(conn, 8, limit=4)) == {a.tenant_id: 2, b.tenant_id: 2}
            assert Counter(await _claim(conn, 8, limit=4)) == {a.tenant_id: 4}
        finally:
            await tx.rollback()
