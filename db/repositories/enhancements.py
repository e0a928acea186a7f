"""The durable enhancement job, and what it proposed and how it was made.

Every function but ``enqueue`` takes a connection already inside a tenant transaction (RLS
decides what it can see); lifecycle updates are fenced by the lease token so a job that was
re-claimed after a crash cannot be finished by the old worker. The insight of a finished job —
its stored proposals with their later suggestion verdict, and the ``explain`` record with its
retention — lives on the same row (``suggestions``, ``suggestion_*``, ``explain``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

JOBS_CHANNEL = "ai_agents_jobs"

PUBLIC_COLUMNS = """id, tenant_id, ticket_id, event, status, outcome, stage, priority, attempts,
    max_attempts, received_at, started_at, finished_at, updated_at, stage_timings,
    context_sources, model, prompt_tokens, completion_tokens, cost_usd, note_id, error,
    trace_id, supersedes, batch_id, suggestion_hit, suggestion_rank, suggestion_similarity"""


@dataclass(frozen=True)
class Enqueued:
    id: uuid.UUID
    status: str
    created: bool
    trace_id: str | None


async def enqueue(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    ticket_id: str,
    event: str,
    dedupe_key: str,
    payload: dict[str, Any],
    trace_context: dict[str, str] | None,
    trace_id: str | None,
    priority: int = 0,
    max_attempts: int = 5,
    supersedes: uuid.UUID | None = None,
    batch_id: str | None = None,
    notify: bool = True,
) -> Enqueued:
    """Insert the job unless this delivery was seen (then return the existing one) and wake
    the dispatcher: one round trip (``app_enqueue_job``). Outside a transaction it sets the
    tenant itself; inside one it must be that transaction's tenant."""
    row = await conn.fetchrow(
        "SELECT * FROM app_enqueue_job($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        tenant_id,
        ticket_id,
        event,
        dedupe_key,
        payload,
        trace_context,
        trace_id,
        priority,
        max_attempts,
        supersedes,
        batch_id,
        JOBS_CHANNEL if notify else None,
    )
    return Enqueued(row["id"], row["status"], row["created"], row["trace_id"])


async def get_public(conn: asyncpg.Connection, enhancement_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        f"SELECT {PUBLIC_COLUMNS} FROM enhancements WHERE id = $1", enhancement_id
    )


async def list_public(
    conn: asyncpg.Connection,
    *,
    status: str | None,
    ticket_id: str | None,
    since: datetime | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        f"""SELECT {PUBLIC_COLUMNS} FROM enhancements
            WHERE ($1::text IS NULL OR status = $1 OR outcome = $1)
              AND ($2::text IS NULL OR ticket_id = $2)
              AND ($3::timestamptz IS NULL OR received_at >= $3)
            ORDER BY received_at DESC, id LIMIT $4 OFFSET $5""",
        status,
        ticket_id,
        since,
        limit,
        offset,
    )


async def start_stage(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    lease_token: uuid.UUID,
    stage: str,
    lease_s: int,
) -> asyncpg.Record | None:
    """The job as its lease holder sees it, moved to its first stage with the lease extended,
    in one statement; None if the lease moved on."""
    return await conn.fetchrow(
        """UPDATE enhancements SET stage = $3, updated_at = now(),
               lease_expires_at = now() + make_interval(secs => $4)
           WHERE id = $1 AND lease_token = $2 AND status = 'running'
           RETURNING *""",
        enhancement_id,
        lease_token,
        stage,
        lease_s,
    )


async def mark_stage(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    lease_token: uuid.UUID,
    stage: str,
    lease_s: int,
) -> bool:
    """Record progress and extend the lease; False if this worker no longer holds it."""
    result = await conn.execute(
        """UPDATE enhancements SET stage = $3, updated_at = now(),
               lease_expires_at = now() + make_interval(secs => $4)
           WHERE id = $1 AND lease_token = $2 AND status = 'running'""",
        enhancement_id,
        lease_token,
        stage,
        lease_s,
    )
    return result == "UPDATE 1"


async def complete(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    lease_token: uuid.UUID,
    *,
    outcome: str,
    stage_timings: dict[str, float],
    context_sources: list[dict[str, Any]] | None,
    model: str | None,
    prompt_tokens: int,
    completion_tokens: int,
    cost_usd: float,
    note_id: str | None,
    error: str | None = None,
) -> bool:
    result = await conn.execute(
        """UPDATE enhancements SET status = 'completed', outcome = $3, stage = 'done',
               stage_timings = $4, context_sources = $5, model = $6, prompt_tokens = $7,
               completion_tokens = $8, cost_usd = $9, note_id = coalesce($10, note_id),
               error = $11, finished_at = now(), updated_at = now(),
               lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
           WHERE id = $1 AND lease_token = $2 AND status = 'running'""",
        enhancement_id,
        lease_token,
        outcome,
        stage_timings,
        context_sources,
        model,
        prompt_tokens,
        completion_tokens,
        cost_usd,
        note_id,
        error,
    )
    return result == "UPDATE 1"


async def fail_or_retry(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    lease_token: uuid.UUID,
    *,
    error: str,
    retryable: bool,
    retry_in_s: float,
    stage_timings: dict[str, float] | None = None,
) -> str:
    """Back to `queued` (delayed) while attempts remain and the error is retryable, else
    `failed` with the reason. Returns the new status, or '' if the lease was lost."""
    row = await conn.fetchrow(
        """UPDATE enhancements SET
               status = CASE WHEN $4 AND attempts < max_attempts THEN 'queued' ELSE 'failed' END,
               not_before = now() + make_interval(secs => $5),
               error = $3, stage_timings = coalesce($6, stage_timings), updated_at = now(),
               finished_at = CASE WHEN $4 AND attempts < max_attempts THEN NULL ELSE now() END,
               lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL
           WHERE id = $1 AND lease_token = $2 AND status = 'running'
           RETURNING status""",
        enhancement_id,
        lease_token,
        error[:2000],
        retryable,
        retry_in_s,
        stage_timings,
    )
    if row is None:
        return ""
    if row["status"] == "queued":
        await conn.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, "retry")
    return row["status"]


async def store_insight(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    *,
    suggestions: list[dict[str, Any]],
    explain: dict[str, Any] | None,
    retention_days: float,
) -> None:
    """Keep the proposals and (retention permitting) the explain record; and, while the
    tenant's transaction is open anyway, clear explain records that outlived the retention."""
    await conn.execute(
        "UPDATE enhancements SET suggestions = $2, explain = $3 WHERE id = $1",
        enhancement_id,
        suggestions,
        explain if retention_days > 0 else None,
    )
    await conn.execute(
        """UPDATE enhancements SET explain = NULL
           WHERE id IN (SELECT id FROM enhancements
                        WHERE explain IS NOT NULL
                          AND finished_at < now() - make_interval(secs => $1)
                        LIMIT 100)""",
        retention_days * 86400.0,
    )


async def latest_with_suggestions(
    conn: asyncpg.Connection, ticket_id: str
) -> asyncpg.Record | None:
    """The ticket's newest finished enhancement whose note proposed something."""
    return await conn.fetchrow(
        """SELECT id, suggestions FROM enhancements
           WHERE ticket_id = $1 AND status = 'completed' AND suggestions IS NOT NULL
             AND jsonb_array_length(suggestions) > 0
           ORDER BY received_at DESC LIMIT 1""",
        ticket_id,
    )


async def record_verdict(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    *,
    hit: bool,
    rank: int | None,
    similarity: float,
) -> None:
    await conn.execute(
        """UPDATE enhancements SET suggestion_hit = $2, suggestion_rank = $3,
               suggestion_similarity = $4, suggestion_checked_at = now()
           WHERE id = $1""",
        enhancement_id,
        hit,
        rank,
        similarity,
    )


async def get_explain(conn: asyncpg.Connection, enhancement_id: uuid.UUID) -> asyncpg.Record | None:
    return await conn.fetchrow(
        """SELECT id, tenant_id, ticket_id, status, outcome, stage, attempts, max_attempts,
                  received_at, started_at, finished_at, stage_timings, context_sources, model,
                  prompt_tokens, completion_tokens, cost_usd, note_id, error, trace_id,
                  supersedes, suggestions, suggestion_hit, suggestion_rank,
                  suggestion_similarity, suggestion_checked_at, explain, confidence,
                  confidence_inputs, confidence_outcome
           FROM enhancements WHERE id = $1""",
        enhancement_id,
    )


async def suggestion_stats(conn: asyncpg.Connection, *, start: Any, end: Any) -> asyncpg.Record:
    return await conn.fetchrow(
        """SELECT count(*) AS checked, count(*) FILTER (WHERE suggestion_hit) AS hits,
                  avg(suggestion_rank) FILTER (WHERE suggestion_hit) AS average_rank
           FROM enhancements
           WHERE suggestion_hit IS NOT NULL
             AND ($1::timestamptz IS NULL OR suggestion_checked_at >= $1)
             AND ($2::timestamptz IS NULL OR suggestion_checked_at < $2)""",
        start,
        end,
    )
