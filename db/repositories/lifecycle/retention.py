"""Retention: deleting what outlived its tenant's retention, one small batch per statement.

Jobs and feedback are deleted inside the tenant's own transaction (row-level security scopes
the statement to that tenant); audit rows, which the service role may only read, through
``app_purge_audit``; LLM usage ledger rows, which it may only add, through
``app_purge_llm_usage`` (one tenant's rows older than a time, nothing else). Each batch takes
the oldest rows first and skips rows another transaction holds (``SKIP LOCKED``), so a purge
never waits on, or makes wait, the pipeline's own updates.
Every deleted row is counted in ``retention_purges`` (``app_count_purged``) in the same
transaction.
"""

from __future__ import annotations

import asyncpg

from db.pool import system_fetch

# What each purge judges a row's age by, and which rows it may delete at all.
_PURGE_JOBS = """
    DELETE FROM enhancements
     WHERE id IN (SELECT id FROM enhancements
                   WHERE finished_at IS NOT NULL AND status IN ('completed', 'failed')
                     AND finished_at < now() - make_interval(secs => $1)
                   ORDER BY finished_at LIMIT $2
                   FOR UPDATE SKIP LOCKED)"""
_PURGE_FEEDBACK = """
    DELETE FROM enhancement_feedback
     WHERE id IN (SELECT id FROM enhancement_feedback
                   WHERE created_at < now() - make_interval(secs => $1)
                   ORDER BY created_at LIMIT $2
                   FOR UPDATE SKIP LOCKED)"""


def _count(status: str) -> int:
    """Rows affected, from asyncpg's command tag (``DELETE 42``)."""
    return int(status.rsplit(" ", 1)[-1])


async def purge_jobs(conn: asyncpg.Connection, older_than_s: float, limit: int) -> int:
    """Delete up to ``limit`` of the tenant's finished jobs older than ``older_than_s``
    (inside the tenant's transaction); queued and running jobs are never touched."""
    deleted = _count(await conn.execute(_PURGE_JOBS, older_than_s, limit))
    if deleted:
        await conn.execute("SELECT app_count_purged('enhancements', $1)", deleted)
    return deleted


async def purge_feedback(conn: asyncpg.Connection, older_than_s: float, limit: int) -> int:
    deleted = _count(await conn.execute(_PURGE_FEEDBACK, older_than_s, limit))
    if deleted:
        await conn.execute("SELECT app_count_purged('enhancement_feedback', $1)", deleted)
    return deleted


async def purge_audit(
    pool: asyncpg.Pool, tenant_id: str | None, older_than_s: float, limit: int
) -> int:
    """Delete up to ``limit`` audit rows older than ``older_than_s`` of ``tenant_id``, or with
    None those of no tenant (or of an id that names none)."""
    rows = await system_fetch(
        pool,
        "SELECT app_purge_audit($1, now() - make_interval(secs => $2), $3) AS n",
        tenant_id,
        older_than_s,
        limit,
    )
    return int(rows[0]["n"])


async def purge_llm_usage(
    pool: asyncpg.Pool, tenant_id: str, older_than_s: float, limit: int
) -> int:
    """Delete up to ``limit`` of ``tenant_id``'s LLM usage ledger rows older than
    ``older_than_s``, oldest first (the monthly sums stay)."""
    rows = await system_fetch(
        pool,
        "SELECT app_purge_llm_usage($1, now() - make_interval(secs => $2), $3) AS n",
        tenant_id,
        older_than_s,
        limit,
    )
    return int(rows[0]["n"])


async def retention_stats(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Per retained table: rows purged so far, the last purge, the oldest row's timestamp."""
    return await system_fetch(pool, "SELECT * FROM app_retention_stats()")
