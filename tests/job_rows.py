"""Queued jobs for tests that drive the claim and the Dispatcher directly (no webhook)."""

from __future__ import annotations

import uuid

import asyncpg

from db.repositories.enhancements import enqueue


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
