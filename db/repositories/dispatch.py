"""The dispatcher's queries: claim, lease recovery, disabled tenants, backlog, and the LISTEN
that wakes it. Each is one call of an ``app_*`` SECURITY DEFINER function, because the
dispatcher works across tenants and so runs outside any tenant transaction (RLS would show it
nothing); the functions are the only cross-tenant access the service role has to jobs.

Every function takes a pool or a connection (``Executor``): the dispatcher passes its pool,
tests may pass a connection inside a transaction they roll back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import asyncpg

from db.repositories.enhancements import JOBS_CHANNEL

Executor: TypeAlias = asyncpg.Pool | asyncpg.Connection


async def claim_jobs(
    db: Executor,
    owner: str,
    limit: int,
    *,
    per_tenant_cap: int | None,
    lease_s: int,
    tenant_id: str | None = None,
) -> list[asyncpg.Record]:
    """Lease up to ``limit`` queued jobs to ``owner`` (``app_claim_jobs``): weighted fair share
    across tenants, each tenant's ``max_inflight`` and ``per_tenant_cap`` as hard caps,
    ``FOR UPDATE SKIP LOCKED``; ``tenant_id`` claims for that tenant only. Rows: id, tenant_id,
    ticket_id, attempts, lease_token, trace_context, priority."""
    return await db.fetch(
        "SELECT * FROM app_claim_jobs($1, $2, $3, $4, $5)",
        owner,
        limit,
        per_tenant_cap,
        lease_s,
        tenant_id,
    )


async def requeue_jobs(db: Executor, owner: str, *, expired_only: bool) -> list[asyncpg.Record]:
    """Put `running` jobs back in the queue (``app_requeue_jobs``): with ``expired_only`` those
    whose lease ran out (a worker died silently); without, also every job ``owner`` did not
    claim (what an earlier dispatcher incarnation left running). Jobs out of attempts end
    `failed`. Rows: id, tenant_id, status."""
    return await db.fetch("SELECT * FROM app_requeue_jobs($1, $2)", owner, expired_only)


async def skip_disabled_jobs(db: Executor) -> list[asyncpg.Record]:
    """End the queued jobs of disabled tenants as `skipped` ("tenant disabled"). Rows: id,
    tenant_id."""
    return await db.fetch("SELECT * FROM app_skip_disabled_jobs()")


async def dispatch_backlog(db: Executor) -> list[asyncpg.Record]:
    """Per tenant with work: ``claimable`` (queued and due, within its cap) and ``running``."""
    return await db.fetch("SELECT * FROM app_dispatch_backlog()")


async def listen_for_jobs(database_url: str, on_job: Callable[[str], None]) -> asyncpg.Connection:
    """A dedicated connection that calls ``on_job(payload)`` whenever a job is enqueued (the
    payload is its tenant) or put back (``'retry'``) — ``NOTIFY ai_agents_jobs``; the caller
    keeps it open and closes it."""
    conn = await asyncpg.connect(database_url)
    await conn.add_listener(JOBS_CHANNEL, lambda _conn, _pid, _channel, payload: on_job(payload))
    return conn
