"""A busy pool's connections go to tenants fairly (db.pool.tenant_transaction), on real
PostgreSQL: a quiet tenant's transaction gets the next free connection instead of waiting
behind every transaction a flooding tenant queued before it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from db.embedded import EmbeddedDatabase
from db.pool import create_pool, tenant_transaction


async def _hold(
    pool: asyncpg.Pool, tenant: str, entered: asyncio.Queue[str], release: asyncio.Event
) -> None:
    async with tenant_transaction(pool, tenant) as conn:
        assert await conn.fetchval("SELECT current_setting('app.current_tenant_id')") == tenant
        entered.put_nowait(tenant)
        await release.wait()


async def _next(entered: asyncio.Queue[str]) -> str:
    async with asyncio.timeout(10):
        return await entered.get()


@pytest.mark.parametrize(("tenant_fair", "next_in"), [(True, "quiet"), (False, "flood")])
async def test_the_next_free_connection_goes_to_the_quiet_tenant(
    database: EmbeddedDatabase, tenant_fair: bool, next_in: str
) -> None:
    pool = await create_pool(database.service_url, min_size=0, max_size=2, tenant_fair=tenant_fair)
    entered: asyncio.Queue[str] = asyncio.Queue()
    releases = [asyncio.Event() for _ in range(7)]
    tasks = [asyncio.create_task(_hold(pool, "flood", entered, releases[i])) for i in range(6)]
    try:
        assert [await _next(entered), await _next(entered)] == ["flood", "flood"]
        await asyncio.sleep(0.05)  # the other four queue for a connection
        tasks.append(asyncio.create_task(_hold(pool, "quiet", entered, releases[6])))
        await asyncio.sleep(0.05)
        assert entered.empty()  # never more transactions than connections
        releases[0].set()
        # fair: the quiet tenant's one transaction goes ahead of the flood's four earlier ones;
        # first come, first served (asyncpg's own order) makes it wait for all four
        assert await _next(entered) == next_in
    finally:
        for event in releases:
            event.set()
        await asyncio.gather(*tasks)
        await pool.close()
    later = [entered.get_nowait() for _ in range(entered.qsize())]
    assert sorted([next_in, *later]) == ["flood"] * 4 + ["quiet"]  # every one got its turn
