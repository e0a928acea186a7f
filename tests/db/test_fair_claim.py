"""`app_claim_jobs` as a work-conserving weighted fair share, the backlog and disabled-tenant
functions, and settings that cannot poison the claim.

Jobs are enqueued inside one rolled-back transaction (as in test_claim_jobs.py) so none outlives
the test; tenant rows are committed (the claim reads their settings and status).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import asyncpg
import pydantic
import pytest

from pipeline.tenancy.admin import TenantUpdate
from pipeline.tenancy.config import TenantSettings
from tests.job_rows import enqueue_jobs


async def _enqueue(conn: asyncpg.Connection, tenant_id: str, count: int) -> None:
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", tenant_id)
    await enqueue_jobs(conn, tenant_id, count)
    await conn.execute("SELECT set_config('app.current_tenant_id', '', true)")


async def _claim(conn: asyncpg.Connection, limit: int, cap: int | None = None) -> Counter[str]:
    rows = await conn.fetch("SELECT * FROM app_claim_jobs('fair-owner', $1, $2, 60)", limit, cap)
    return Counter(r["tenant_id"] for r in rows)


async def _finish(conn: asyncpg.Connection, tenant_id: str, count: int) -> None:
    """Complete `count` of the tenant's running jobs, as the workflow would."""
    await conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", tenant_id)
    await conn.execute(
        """UPDATE enhancements SET status = 'completed', outcome = 'llm', lease_token = NULL
           WHERE id IN (SELECT id FROM enhancements WHERE tenant_id = $1 AND status = 'running'
                        ORDER BY received_at LIMIT $2)""",
        tenant_id,
        count,
    )
    await conn.execute("SELECT set_config('app.current_tenant_id', '', true)")


@pytest.fixture
async def tx_conn(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A connection inside a transaction that is rolled back, with every job queued by earlier
    tests claimed out of the way first (undone by the rollback)."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.fetch("SELECT * FROM app_claim_jobs('set-aside', 1000000, NULL, 60)")
            yield conn
        finally:
            await tx.rollback()


async def test_a_tenant_alone_takes_every_free_slot(tx_conn, make_tenant) -> None:
    alone = (await make_tenant("alone")).tenant_id
    await _enqueue(tx_conn, alone, 50)
    assert await _claim(tx_conn, 40) == {alone: 40}
    assert await _claim(tx_conn, 40) == {alone: 10}


async def test_capacity_splits_by_weight_among_tenants_with_backlog(tx_conn, make_tenant) -> None:
    light = (await make_tenant("light")).tenant_id
    heavy = (await make_tenant("heavy", settings=TenantSettings(dispatch_weight=3))).tenant_id
    equal = (await make_tenant("equal")).tenant_id
    await _enqueue(tx_conn, light, 40)
    await _enqueue(tx_conn, heavy, 40)
    assert await _claim(tx_conn, 20) == {light: 5, heavy: 15}
    # a third tenant with weight 1 joins: the next slots go to it until it is level
    await _enqueue(tx_conn, equal, 40)
    assert await _claim(tx_conn, 5) == {equal: 5}
    assert await _claim(tx_conn, 5) == {light: 1, equal: 1, heavy: 3}


async def test_a_newcomer_gets_its_share_in_the_next_cycle(tx_conn, make_tenant) -> None:
    flood, quiet = (await make_tenant("flood")).tenant_id, (await make_tenant("quiet")).tenant_id
    await _enqueue(tx_conn, flood, 100)
    assert await _claim(tx_conn, 10) == {flood: 10}  # the whole capacity of 10
    await _enqueue(tx_conn, quiet, 10)
    # no pre-emption: the dispatcher has no room until some of the flood's jobs finish ...
    await _finish(tx_conn, flood, 4)
    # ... and then the very next claim gives every freed slot to the newcomer
    assert await _claim(tx_conn, 4) == {quiet: 4}
    await _finish(tx_conn, flood, 2)  # 4 each running now: level, so slots alternate
    assert await _claim(tx_conn, 2) == {flood: 1, quiet: 1}


async def test_max_inflight_is_a_hard_cap_and_the_rest_flows_to_others(
    tx_conn, make_tenant
) -> None:
    capped = (await make_tenant("hard", settings=TenantSettings(max_inflight=3))).tenant_id
    other = (await make_tenant("soft")).tenant_id
    await _enqueue(tx_conn, capped, 20)
    assert await _claim(tx_conn, 10) == {capped: 3}
    await _enqueue(tx_conn, other, 20)
    assert await _claim(tx_conn, 10) == {other: 10}
    # the service-wide default cap applies to tenants without their own setting
    assert await _claim(tx_conn, 10, cap=12) == {other: 2}


async def test_disabled_tenants_are_not_claimed_and_their_jobs_end_skipped(
    tx_conn, make_tenant, tenant_admin
) -> None:
    gone, kept = (await make_tenant("gone")).tenant_id, (await make_tenant("kept")).tenant_id
    await _enqueue(tx_conn, gone, 3)
    await _enqueue(tx_conn, kept, 2)
    await tenant_admin.disable(gone, actor="test")
    backlog = {
        r["tenant_id"]: r["claimable"]
        for r in await tx_conn.fetch("SELECT * FROM app_dispatch_backlog()")
    }
    assert gone not in backlog and backlog[kept] == 2
    assert await _claim(tx_conn, 10) == {kept: 2}
    # app_skip_disabled_jobs is system-wide: count only this test's tenants (an earlier test in
    # the same database may have left a disabled tenant's job behind)
    mine = {gone, kept}
    skipped = await tx_conn.fetch("SELECT * FROM app_skip_disabled_jobs()")
    assert Counter(r["tenant_id"] for r in skipped if r["tenant_id"] in mine) == {gone: 3}
    await tx_conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", gone)
    rows = await tx_conn.fetch(
        "SELECT status, outcome, error, finished_at FROM enhancements WHERE tenant_id = $1", gone
    )
    assert [(r["status"], r["outcome"], r["error"]) for r in rows] == [
        ("completed", "skipped", "tenant disabled")
    ] * 3
    assert all(r["finished_at"] is not None for r in rows)
    again = await tx_conn.fetch("SELECT * FROM app_skip_disabled_jobs()")
    assert [r for r in again if r["tenant_id"] in mine] == []


async def test_backlog_counts_claimable_and_running_per_tenant(tx_conn, make_tenant) -> None:
    tenant = (await make_tenant("backlog")).tenant_id
    await _enqueue(tx_conn, tenant, 7)
    await _claim(tx_conn, 3)
    await tx_conn.execute("SELECT set_config('app.current_tenant_id', $1, true)", tenant)
    await tx_conn.execute(
        """UPDATE enhancements SET not_before = now() + interval '1 hour'
                             WHERE id = (SELECT id FROM enhancements WHERE tenant_id = $1
                                         AND status = 'queued' LIMIT 1)""",
        tenant,
    )
    row = await tx_conn.fetchrow(
        "SELECT * FROM app_dispatch_backlog() WHERE tenant_id = $1", tenant
    )
    assert (row["claimable"], row["running"]) == (3, 3)  # the delayed retry is not claimable


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ('{"max_inflight": 2147483648, "dispatch_weight": 1e30}', 5),  # clamped to the bounds
        ('{"max_inflight": "ten", "dispatch_weight": -5}', 5),  # not a number: no cap, weight 1
        ('{"max_inflight": 2.5, "dispatch_weight": {"x": 1}}', 3),  # rounded
        ('"not an object"', 5),
    ],
)
async def test_a_bad_stored_setting_never_makes_the_claim_fail(
    tx_conn, make_tenant, owner_conn, stored: str, expected: int
) -> None:
    poisoned, healthy = (await make_tenant("poison")).tenant_id, (await make_tenant("ok")).tenant_id
    # written behind the API's back, as a value stored before validation existed would be
    await owner_conn.execute(
        "UPDATE tenants SET settings = $2::jsonb WHERE id = $1", poisoned, stored
    )
    try:
        await _enqueue(tx_conn, poisoned, 5)
        await _enqueue(tx_conn, healthy, 5)
        claimed = await _claim(tx_conn, 100)
        assert claimed == {healthy: 5, poisoned: expected}
    finally:  # the database is shared by the session: leave no poisoned tenant behind
        await owner_conn.execute(
            "UPDATE tenants SET settings = '{}'::jsonb WHERE id = $1", poisoned
        )


async def test_settings_are_bounded_when_written() -> None:
    with pytest.raises(pydantic.ValidationError):
        TenantUpdate(settings={"max_inflight": 2147483648})
    with pytest.raises(pydantic.ValidationError):
        TenantUpdate(settings={"dispatch_weight": 101})
    with pytest.raises(pydantic.ValidationError):
        TenantUpdate(settings={"dispatch_weight": 0})
    assert TenantSettings().dispatch_weight == 1
