"""`enqueue` (`app_enqueue_job`): the webhook's one round trip, under RLS like any tenant
transaction, with hand-written queries checking what it did."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest

from db.pool import tenant_transaction
from db.repositories.enhancements import JOBS_CHANNEL, enqueue


def _job(tenant_id: str, key: str, **extra: object) -> dict[str, object]:
    return {
        "tenant_id": tenant_id,
        "ticket_id": "42",
        "event": "created",
        "dedupe_key": key,
        "payload": {"ticket": {"id": "42"}},
        "trace_context": None,
        "trace_id": "t" * 32,
        **extra,
    }


async def test_enqueue_outside_a_transaction_inserts_notifies_and_dedupes(
    pool, database, make_tenant
) -> None:
    tenant = (await make_tenant("enq")).tenant_id
    heard: asyncio.Queue[str] = asyncio.Queue()
    listener = await asyncpg.connect(database.service_url)
    await listener.add_listener(JOBS_CHANNEL, lambda *args: heard.put_nowait(args[-1]))
    try:
        key = uuid.uuid4().hex
        async with pool.acquire() as conn:
            first = await enqueue(conn, **_job(tenant, key))
            # the tenant setting was local to that one statement's transaction
            assert (
                await conn.fetchval(
                    "SELECT coalesce(current_setting('app.current_tenant_id', true), '')"
                )
                == ""
            )
            again = await enqueue(conn, **_job(tenant, key, trace_id="u" * 32))
        assert first.created and first.status == "queued"
        assert (again.id, again.created, again.trace_id) == (first.id, False, "t" * 32)
        async with asyncio.timeout(5):
            assert await heard.get() == tenant
        assert heard.empty()  # the duplicate woke nobody
        async with tenant_transaction(pool, tenant) as conn:
            rows = await conn.fetch("SELECT id FROM enhancements WHERE dedupe_key = $1", key)
        assert [r["id"] for r in rows] == [first.id]
    finally:
        await listener.close()


async def test_enqueue_inside_another_tenants_transaction_is_refused(pool, make_tenant) -> None:
    mine, other = (await make_tenant("enq-a")).tenant_id, (await make_tenant("enq-b")).tenant_id
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="inside a transaction"):
        async with tenant_transaction(pool, mine) as conn:
            await enqueue(conn, **_job(other, uuid.uuid4().hex))
    async with tenant_transaction(pool, mine) as conn:  # its own tenant is fine
        assert (await enqueue(conn, **_job(mine, uuid.uuid4().hex), notify=False)).created


async def test_enqueue_cannot_read_another_tenants_job_through_a_shared_key(
    pool, make_tenant
) -> None:
    a, b = (await make_tenant("enq-x")).tenant_id, (await make_tenant("enq-y")).tenant_id
    key = uuid.uuid4().hex
    async with pool.acquire() as conn:
        first = await enqueue(conn, **_job(a, key))
        second = await enqueue(conn, **_job(b, key))
    assert second.created and second.id != first.id  # same key, different tenants: two jobs
