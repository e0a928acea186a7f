"""Queued jobs for tests that drive the claim and the Dispatcher directly (no webhook)."""

from __future__ import annotations

import uuid

import asyncpg

from db.pool import tenant_transaction
from db.repositories.enhancements import complete, enqueue


async def enqueue_jobs(
    conn: asyncpg.Connection, tenant_id: str, count: int, *, notify: bool = False, first: int = 0
) -> None:
    """``count`` queued jobs for tickets ``first``, ``first + 1``, ... with fresh dedupe keys;
    ``notify``: each wakes the Dispatcher as a webhook's job does."""
    for n in range(first, first + count):
        await enqueue(
            conn,
            tenant_id=tenant_id,
            ticket_id=str(n),
            event="created",
            dedupe_key=uuid.uuid4().hex,
            payload={"ticket": {"id": str(n)}},
            trace_context=None,
            trace_id=None,
            notify=notify,
        )


async def complete_job(
    pool: asyncpg.Pool, tenant_id: str, job_id: uuid.UUID | str, lease_token: uuid.UUID | str
) -> bool:
    """Complete a claimed job as the Enhancer would; False when its lease no longer holds."""
    async with tenant_transaction(pool, tenant_id) as conn:
        return await complete(
            conn,
            uuid.UUID(str(job_id)),
            uuid.UUID(str(lease_token)),
            outcome="llm",
            stage_timings={},
            context_sources=None,
            model=None,
            prompt_tokens=0,
            completion_tokens=0,
            cost_usd=0.0,
            note_id=None,
        )


async def fail_other_tenants_jobs(owner_url: str, keep: set[str]) -> int:
    """Fail every queued or running job of tenants not in ``keep``; returns how many.

    The session shares one database, and earlier tests may leave jobs queued or running. A
    Dispatcher claims across tenants and shares its in-flight limit fairly, so another test's
    leftover backlog takes part of the limit; a test asserting how that limit is shared among
    its own tenants starts from a database where only they have work. As the owner: across
    tenants, past row-level security."""
    conn = await asyncpg.connect(owner_url)
    try:
        result = await conn.execute(
            """UPDATE enhancements
                  SET status = 'failed', error = 'left by an earlier test', finished_at = now(),
                      lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
                WHERE status IN ('queued', 'running') AND NOT tenant_id = ANY($1::text[])""",
            sorted(keep),
        )
    finally:
        await conn.close()
    return int(result.split()[-1])
