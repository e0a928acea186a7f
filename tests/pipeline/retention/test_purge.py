"""Retention on the real PostgreSQL: what is older than a tenant's retention goes, in batches,
and nothing else; counted for the metrics; never waiting on rows the pipeline holds.

The task walks every tenant of the session's database, so its service defaults here are the
ceiling (ten years): only the tenants these tests create, with their own short retention,
lose anything.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest

from core.tenant_types import RETENTION_DAYS_MAX, RETENTION_DAYS_MIN
from db.pool import tenant_transaction
from db.repositories.audit import write_audit
from db.repositories.enhancements import enqueue
from db.repositories.feedback import insert_feedback
from db.repositories.lifecycle.retention import retention_stats
from pipeline.retention.purge import RetentionConfig, RetentionPolicy, RetentionTask
from pipeline.tenancy.admin import TenantAdmin, TenantUpdate
from pipeline.tenancy.config import TenantSettings

CEILING = RetentionPolicy(*[RETENTION_DAYS_MAX] * 4)


async def _tenant(make_tenant, tenant_admin: TenantAdmin, **retention: float) -> str:
    tenant_id = (await make_tenant("ret")).tenant_id
    await tenant_admin.update(
        tenant_id, TenantUpdate(settings=TenantSettings(**retention)), actor="test"
    )
    return tenant_id


async def _job(
    pool: asyncpg.Pool,
    owner_conn: asyncpg.Connection,
    tenant_id: str,
    *,
    status: str = "completed",
    age_days: float = 0.0,
    supersedes: uuid.UUID | None = None,
) -> uuid.UUID:
    """A job of ``tenant_id`` in ``status``; a finished one finished ``age_days`` ago."""
    async with tenant_transaction(pool, tenant_id) as conn:
        queued = await enqueue(
            conn,
            tenant_id=tenant_id,
            ticket_id=uuid.uuid4().hex[:10],
            event="created",
            dedupe_key=uuid.uuid4().hex,
            payload={"ticket": {"ticket_id": "1"}},
            trace_context=None,
            trace_id=None,
            supersedes=supersedes,
            notify=False,
        )
    finished = status in ("completed", "failed")
    await owner_conn.execute(
        """UPDATE enhancements SET status = $2,
               received_at = now() - make_interval(secs => $3 + 60),
               finished_at = CASE WHEN $4 THEN now() - make_interval(secs => $3) END
           WHERE id = $1""",
        queued.id,
        status,
        age_days * 86400.0,
        finished,
    )
    return queued.id


async def _feedback(
    pool: asyncpg.Pool, owner_conn: asyncpg.Connection, tenant_id: str, job: uuid.UUID, age: float
) -> int:
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await insert_feedback(
            conn,
            tenant_id=tenant_id,
            enhancement_id=job,
            ticket_id="1",
            feedback_type="thumbs_up",
            rating_value=None,
            technician_email=None,
            comment=None,
        )
    await owner_conn.execute(
        "UPDATE enhancement_feedback SET created_at = now() - make_interval(secs => $2) "
        "WHERE id = $1",
        row["id"],
        age * 86400.0,
    )
    return int(row["id"])


async def _audit(pool: asyncpg.Pool, owner_conn: asyncpg.Connection, tenant: str | None) -> str:
    marker = uuid.uuid4().hex
    await write_audit(
        pool, tenant_id=tenant, actor="test", action="test.retention", target=marker, outcome="ok"
    )
    await owner_conn.execute(
        "UPDATE audit_log SET created_at = now() - interval '20 days' WHERE target = $1", marker
    )
    return marker


async def _exists(owner_conn: asyncpg.Connection, table: str, column: str, value: Any) -> bool:
    return bool(
        await owner_conn.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1", value)
    )


async def _purged(pool: asyncpg.Pool) -> dict[str, int]:
    return {r["table_name"]: int(r["purged"]) for r in await retention_stats(pool)}


async def test_purges_what_outlived_the_tenants_retention_and_nothing_else(
    pool, owner_conn, make_tenant, tenant_admin
) -> None:
    short = await _tenant(
        make_tenant,
        tenant_admin,
        retention_days_jobs=7,
        retention_days_feedback=30,
        retention_days_audit=10,
    )
    other = await _tenant(make_tenant, tenant_admin)  # the service defaults: the ceiling here
    old_done = await _job(pool, owner_conn, short, age_days=8)
    old_failed = await _job(pool, owner_conn, short, status="failed", age_days=8)
    recent = await _job(pool, owner_conn, short, age_days=6)
    queued = await _job(pool, owner_conn, short, status="queued", age_days=100)
    running = await _job(pool, owner_conn, short, status="running", age_days=100)
    others_old = await _job(pool, owner_conn, other, age_days=400)
    old_feedback = await _feedback(pool, owner_conn, short, recent, 31)
    new_feedback = await _feedback(pool, owner_conn, short, recent, 29)
    old_audit, others_audit = (
        await _audit(pool, owner_conn, short),
        await _audit(pool, owner_conn, other),
    )
    before = await _purged(pool)

    run = await RetentionTask(pool, CEILING).run_once()

    for gone in (old_done, old_failed):
        assert not await _exists(owner_conn, "enhancements", "id", gone)
    for kept in (recent, queued, running, others_old):
        assert await _exists(owner_conn, "enhancements", "id", kept)
    assert not await _exists(owner_conn, "enhancement_feedback", "id", old_feedback)
    assert await _exists(owner_conn, "enhancement_feedback", "id", new_feedback)
    assert not await _exists(owner_conn, "audit_log", "target", old_audit)
    assert await _exists(owner_conn, "audit_log", "target", others_audit)
    assert run.purged["enhancements"] >= 2 and run.purged["enhancement_feedback"] >= 1
    after = await _purged(pool)
    for table, n in run.purged.items():
        assert after[table] - before[table] == n, table  # every deleted row is counted


async def test_deletes_in_batches_and_carries_on_at_the_next_run(
    pool, owner_conn, make_tenant, tenant_admin
) -> None:
    tenant = await _tenant(make_tenant, tenant_admin, retention_days_jobs=1)
    jobs = [await _job(pool, owner_conn, tenant, age_days=2) for _ in range(25)]
    task = RetentionTask(pool, CEILING, RetentionConfig(batch=10, max_batches=2, pause_s=0))

    first = await task.run_once()
    left = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE id = ANY($1::uuid[])", jobs
    )
    assert first.purged["enhancements"] == 20 and left == 5  # two batches of ten, then stop
    second = await task.run_once()
    assert second.purged["enhancements"] == 5
    assert task.status()["purged_total"]["enhancements"] == 25 and task.runs == 2


async def test_a_superseded_job_with_feedback_can_go_and_the_references_become_null(
    pool, owner_conn, make_tenant, tenant_admin
) -> None:
    tenant = await _tenant(make_tenant, tenant_admin, retention_days_jobs=5)
    original = await _job(pool, owner_conn, tenant, age_days=6)
    newer = await _job(pool, owner_conn, tenant, age_days=1, supersedes=original)
    feedback = await _feedback(pool, owner_conn, tenant, original, 1)

    await RetentionTask(pool, CEILING).run_once()

    assert not await _exists(owner_conn, "enhancements", "id", original)
    assert (
        await owner_conn.fetchval("SELECT supersedes FROM enhancements WHERE id = $1", newer)
        is None
    )
    row = await owner_conn.fetchrow(
        "SELECT enhancement_id, ticket_id FROM enhancement_feedback WHERE id = $1", feedback
    )
    assert row["enhancement_id"] is None and row["ticket_id"] == "1"  # the feedback stays


async def test_audit_rows_of_no_tenant_follow_the_service_default(pool, owner_conn) -> None:
    untenanted = await _audit(pool, owner_conn, None)
    unknown = await _audit(pool, owner_conn, f"no-such-{uuid.uuid4().hex[:6]}")
    await RetentionTask(pool, RetentionPolicy(audit=30)).run_once()
    assert await _exists(owner_conn, "audit_log", "target", untenanted)  # 20 days < 30
    await RetentionTask(
        pool, RetentionPolicy(jobs=RETENTION_DAYS_MAX, feedback=RETENTION_DAYS_MAX, audit=10)
    ).run_once()
    for gone in (untenanted, unknown):
        assert not await _exists(owner_conn, "audit_log", "target", gone)


async def test_rows_another_transaction_holds_are_skipped_not_waited_for(
    pool, owner_conn, database, make_tenant, tenant_admin
) -> None:
    tenant = await _tenant(make_tenant, tenant_admin, retention_days_jobs=1)
    held = await _job(pool, owner_conn, tenant, age_days=2)
    free = await _job(pool, owner_conn, tenant, age_days=2)
    holder = await asyncpg.connect(database.owner_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("SELECT 1 FROM enhancements WHERE id = $1 FOR UPDATE", held)
        async with asyncio.timeout(10):  # waiting on the lock would hang here
            await RetentionTask(pool, CEILING).run_once()
        await transaction.rollback()
    finally:
        await holder.close()
    assert await _exists(owner_conn, "enhancements", "id", held)
    assert not await _exists(owner_conn, "enhancements", "id", free)


async def test_the_oldest_row_is_reported_per_table(pool, owner_conn, make_tenant) -> None:
    tenant = (await make_tenant("ret-age")).tenant_id
    await _job(pool, owner_conn, tenant, age_days=3000)
    stats = {r["table_name"]: r for r in await retention_stats(pool)}
    assert set(stats) == {"enhancements", "enhancement_feedback", "audit_log", "llm_usage"}
    oldest = await owner_conn.fetchval(
        "SELECT min(finished_at) FROM enhancements WHERE finished_at IS NOT NULL"
    )
    assert stats["enhancements"]["oldest_at"] == oldest


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ({"retention_days_jobs": 7}, 7.0),
        ({"retention_days_jobs": "forever"}, 90.0),  # not a number: the service's value
        ({"retention_days_jobs": True}, 90.0),
        ({"retention_days_jobs": 10**9}, RETENTION_DAYS_MAX),  # clamped
        ({"retention_days_jobs": 0}, RETENTION_DAYS_MIN),
        ({}, 90.0),
        ("not an object", 90.0),
    ],
)
def test_a_tenants_stored_settings_are_read_leniently(stored: Any, expected: float) -> None:
    assert RetentionPolicy(jobs=90).for_tenant(stored).jobs == expected


async def test_a_failing_run_is_counted_and_the_task_keeps_going(database) -> None:
    from db.pool import create_pool

    broken = await create_pool(database.service_url, min_size=1, max_size=1)
    await broken.close()  # every query now fails as if the database were gone
    task = RetentionTask(broken, CEILING, RetentionConfig(every_s=0.05, first_run_after_s=0))
    task.start()
    try:
        async with asyncio.timeout(10):
            while task.failures < 2:  # noqa: ASYNC110 - polling the task's own counter
                await asyncio.sleep(0.02)
        assert task.running
    finally:
        await task.stop()
    assert not task.running


async def test_webhook_intake_goes_on_while_a_large_purge_runs(
    pool, owner_conn, make_tenant, tenant_admin
) -> None:
    tenant = await _tenant(make_tenant, tenant_admin, retention_days_jobs=1)
    await owner_conn.execute(
        """INSERT INTO enhancements (tenant_id, ticket_id, dedupe_key, status, payload,
               received_at, finished_at)
           SELECT $1, 'old-' || n, md5(random()::text || n), 'completed', '{}'::jsonb,
                  now() - interval '3 days', now() - interval '2 days'
           FROM generate_series(1, 3000) n""",
        tenant,
    )
    task = RetentionTask(pool, CEILING, RetentionConfig(batch=200, max_batches=100, pause_s=0))
    latencies: list[float] = []

    async def intake() -> None:
        loop = asyncio.get_running_loop()
        for _ in range(40):
            started = loop.time()
            async with pool.acquire() as conn:  # as the webhook route does: one statement
                await enqueue(
                    conn,
                    tenant_id=tenant,
                    ticket_id=uuid.uuid4().hex[:10],
                    event="created",
                    dedupe_key=uuid.uuid4().hex,
                    payload={"ticket": {"ticket_id": "1"}},
                    trace_context=None,
                    trace_id=None,
                    notify=False,
                )
            latencies.append(loop.time() - started)

    run, _ = await asyncio.gather(task.run_once(), intake())

    assert run.purged["enhancements"] >= 3000
    assert len(latencies) == 40 and max(latencies) < 2.0, max(latencies)
    left = await owner_conn.fetchval(
        "SELECT count(*) FROM enhancements WHERE tenant_id = $1 AND status = 'queued'", tenant
    )
    assert left == 40  # every new job is there, none was taken for an expired one
