"""What an enhancement proposed and how it was made (tenant-scoped): the stored proposals and
their later suggestion verdict, and the ``explain`` record with its retention."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg


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
                  suggestion_similarity, suggestion_checked_at, explain
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
