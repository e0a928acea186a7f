"""Retention of the LLM usage ledger on the real PostgreSQL: a tenant's ledger rows older than
its ``retention_days_llm_usage`` go, in batches, through ``app_purge_llm_usage`` (the service
role itself may not delete a billing row); other tenants' rows, recent rows and the monthly sums
stay; what went is counted for the metrics.

The task walks every tenant of the session's database, so its service defaults here are the
ceiling: only the tenants these tests create, with their own short retention, lose anything.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from core.settings import Settings
from core.tenant_types import RETENTION_DAYS_MAX
from db.pool import tenant_transaction
from db.repositories.lifecycle.retention import retention_stats
from db.repositories.llm_usage import record_attempts
from pipeline.models import AttemptUsage
from pipeline.retention.purge import RetentionConfig, RetentionPolicy, RetentionTask
from pipeline.tenancy.admin import TenantAdmin, TenantUpdate
from pipeline.tenancy.config import TenantSettings

CEILING = RetentionPolicy(*[RETENTION_DAYS_MAX] * 4)


async def _tenant(make_tenant, tenant_admin: TenantAdmin, **retention: float) -> str:
    tenant_id = (await make_tenant("usage-ret")).tenant_id
    await tenant_admin.update(
        tenant_id, TenantUpdate(settings=TenantSettings(**retention)), actor="test"
    )
    return tenant_id


async def _ledger(
    pool: asyncpg.Pool, owner_conn: asyncpg.Connection, tenant_id: str, age_days: float, n: int = 1
) -> list[int]:
    """``n`` answered attempts of ``tenant_id``, recorded ``age_days`` ago (ids)."""
    attempts = [
        AttemptUsage(
            model="m/x", outcome="ok", prompt_tokens=100, completion_tokens=20, cost_usd=0.01
        )
    ] * n
    async with tenant_transaction(pool, tenant_id) as conn:
        before = await conn.fetchval("SELECT coalesce(max(id), 0) FROM llm_usage")
        await record_attempts(conn, tenant_id, None, attempts)
        ids = [r["id"] for r in await conn.fetch("SELECT id FROM llm_usage WHERE id > $1", before)]
    await owner_conn.execute(
        "UPDATE llm_usage SET at = now() - make_interval(secs => $2) WHERE id = ANY($1::bigint[])",
        ids,
        age_days * 86400.0,
    )
    return ids


async def _left(owner_conn: asyncpg.Connection, ids: list[int]) -> int:
    return int(
        await owner_conn.fetchval(
            "SELECT count(*) FROM llm_usage WHERE id = ANY($1::bigint[])", ids
        )
    )


async def _monthly(owner_conn: asyncpg.Connection, tenant_id: str) -> list[Any]:
    return [
        tuple(r)
        for r in await owner_conn.fetch(
            "SELECT month, model, attempts, prompt_tokens, completion_tokens, cost_usd "
            "FROM llm_usage_monthly WHERE tenant_id = $1 ORDER BY month, model",
            tenant_id,
        )
    ]


async def _purged(pool: asyncpg.Pool) -> int:
    stats = {r["table_name"]: r for r in await retention_stats(pool)}
    return int(stats["llm_usage"]["purged"])


async def test_old_ledger_rows_go_and_recent_ones_other_tenants_and_monthly_sums_stay(
    pool, owner_conn, make_tenant, tenant_admin
) -> None:
    short = await _tenant(make_tenant, tenant_admin, retention_days_llm_usage=30)
    other = await _tenant(make_tenant, tenant_admin)  # the service default: the ceiling here
    old = await _ledger(pool, owner_conn, short, age_days=31, n=3)
    recent = await _ledger(pool, owner_conn, short, age_days=29, n=2)
    others_old = await _ledger(pool, owner_conn, other, age_days=500)
    sums = await _monthly(owner_conn, short)
    counted = await _purged(pool)

    run = await RetentionTask(pool, CEILING).run_once()

    assert await _left(owner_conn, old) == 0
    assert await _left(owner_conn, recent) == 2
    assert await _left(owner_conn, others_old) == 1
    assert run.purged["llm_usage"] == 3  # the session's other tenants keep theirs (ceiling)
    assert await _purged(pool) - counted == 3  # counted for ai_agents_retention_purged_total
    # the monthly sums (budgets, the spend counters) do not lose what the purged rows cost
    assert await _monthly(owner_conn, short) == sums and sums


async def test_the_ledger_is_purged_in_batches_and_the_next_run_carries_on(
    pool, owner_conn, make_tenant, tenant_admin
) -> None:
    tenant = await _tenant(make_tenant, tenant_admin, retention_days_llm_usage=1)
    rows = await _ledger(pool, owner_conn, tenant, age_days=2, n=25)
    task = RetentionTask(pool, CEILING, RetentionConfig(batch=10, max_batches=2, pause_s=0))

    first = await task.run_once()
    assert first.purged["llm_usage"] == 20 and await _left(owner_conn, rows) == 5
    second = await task.run_once()
    assert second.purged["llm_usage"] == 5 and await _left(owner_conn, rows) == 0


async def test_the_service_role_cannot_delete_ledger_rows_itself(
    pool, owner_conn, make_tenant
) -> None:
    tenant = (await make_tenant("usage-ro")).tenant_id
    rows = await _ledger(pool, owner_conn, tenant, age_days=0)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with tenant_transaction(pool, tenant) as conn:
            await conn.execute("DELETE FROM llm_usage")
    assert await _left(owner_conn, rows) == 1


async def test_the_ledgers_oldest_row_is_reported(pool, owner_conn, make_tenant) -> None:
    tenant = (await make_tenant("usage-age")).tenant_id
    await _ledger(pool, owner_conn, tenant, age_days=3000)
    stats = {r["table_name"]: r for r in await retention_stats(pool)}
    oldest = await owner_conn.fetchval(
        "SELECT min(u.at) FROM llm_usage u JOIN tenants t ON t.id = u.tenant_id"
    )
    assert stats["llm_usage"]["oldest_at"] == oldest


def test_the_default_is_400_days_and_a_tenant_may_change_it() -> None:
    assert Settings().retention_days_llm_usage == 400.0
    policy = RetentionPolicy.from_settings(Settings())
    assert policy.llm_usage == 400.0 and policy.days("llm_usage") == 400.0
    assert policy.for_tenant({"retention_days_llm_usage": 60}).llm_usage == 60.0
    assert policy.for_tenant({"retention_days_llm_usage": "a year"}).llm_usage == 400.0
    assert policy.for_tenant({"retention_days_llm_usage": 10**9}).llm_usage == RETENTION_DAYS_MAX
    with pytest.raises(ValueError):
        TenantSettings(retention_days_llm_usage=0)


async def test_the_ledger_holds_no_text_about_a_requester(owner_conn) -> None:
    """Erasure leaves the ledger alone because it has nothing of a requester: its only text
    columns name the tenant, the model and the attempt's outcome. A new text column fails this
    test, so whoever adds one decides what erasure does with it."""
    text_columns = {
        r["column_name"]
        for r in await owner_conn.fetch(
            """SELECT column_name FROM information_schema.columns
                WHERE table_schema = 'public' AND table_name IN ('llm_usage', 'llm_usage_monthly')
                  AND data_type IN ('text', 'character varying', 'jsonb', 'json', 'ARRAY',
                                    'tsvector')"""
        )
    }
    assert text_columns == {"tenant_id", "model", "outcome"}
