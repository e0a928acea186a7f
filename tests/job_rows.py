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
