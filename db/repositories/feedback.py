"""Technician feedback on enhancements (tenant-scoped)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg


async def ticket_for_enhancement(conn: asyncpg.Connection, enhancement_id: uuid.UUID) -> str | None:
    return await conn.fetchval("SELECT ticket_id FROM enhancements WHERE id = $1", enhancement_id)


async def latest_enhancement_for_ticket(
    conn: asyncpg.Connection, ticket_id: str
) -> uuid.UUID | None:
    return await conn.fetchval(
        "SELECT id FROM enhancements WHERE ticket_id = $1 ORDER BY received_at DESC LIMIT 1",
        ticket_id,
    )


async def insert_feedback(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    enhancement_id: uuid.UUID | None,
    ticket_id: str,
    feedback_type: str,
    rating_value: int | None,
    technician_email: str | None,
    comment: str | None,
) -> asyncpg.Record:
    return await conn.fetchrow(
        """INSERT INTO enhancement_feedback (tenant_id, enhancement_id, ticket_id, feedback_type,
               rating_value, technician_email, comment)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *""",
        tenant_id,
        enhancement_id,
        ticket_id,
        feedback_type,
        rating_value,
        technician_email,
        comment,
    )


async def list_feedback(
    conn: asyncpg.Connection,
    *,
    start: datetime | None,
    end: datetime | None,
    feedback_type: str | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT * FROM enhancement_feedback
           WHERE ($1::timestamptz IS NULL OR created_at >= $1)
             AND ($2::timestamptz IS NULL OR created_at < $2)
             AND ($3::text IS NULL OR feedback_type = $3)
           ORDER BY created_at DESC, id DESC LIMIT $4 OFFSET $5""",
        start,
        end,
        feedback_type,
        limit,
        offset,
    )


async def feedback_stats(
    conn: asyncpg.Connection, *, start: datetime | None, end: datetime | None
) -> asyncpg.Record:
    return await conn.fetchrow(
        """SELECT count(*) AS total,
                  avg(rating_value) FILTER (WHERE feedback_type = 'rating') AS average_rating,
                  count(*) FILTER (WHERE feedback_type = 'thumbs_up') AS thumbs_up,
                  count(*) FILTER (WHERE feedback_type = 'thumbs_down') AS thumbs_down,
                  count(*) FILTER (WHERE feedback_type = 'rating') AS rating,
                  count(*) FILTER (WHERE feedback_type = 'thumbs_up'
                                    OR (feedback_type = 'rating' AND rating_value >= 4)) AS positive
           FROM enhancement_feedback
           WHERE ($1::timestamptz IS NULL OR created_at >= $1)
             AND ($2::timestamptz IS NULL OR created_at < $2)""",
        start,
        end,
    )


async def upsert_link_feedback(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    enhancement_id: uuid.UUID,
    ticket_id: str,
    vote: str,
    feedback_type: str,
    rating_value: int | None,
    comment: str | None,
) -> tuple[asyncpg.Record, bool]:
    """Record a confirmed feedback link: one row per enhancement and vote kind ('thumbs' or
    'rating'); confirming again replaces the answer and comment. Returns (row, created)."""
    row = await conn.fetchrow(
        """INSERT INTO enhancement_feedback (tenant_id, enhancement_id, ticket_id, feedback_type,
               rating_value, comment, link_vote)
           VALUES ($1, $2, $3, $4, $5, $6, $7)
           ON CONFLICT (tenant_id, enhancement_id, link_vote) WHERE link_vote IS NOT NULL
           DO UPDATE SET feedback_type = EXCLUDED.feedback_type,
               rating_value = EXCLUDED.rating_value, comment = EXCLUDED.comment,
               updated_at = now()
           RETURNING *, (xmax = 0) AS created""",
        tenant_id,
        enhancement_id,
        ticket_id,
        feedback_type,
        rating_value,
        comment,
        vote,
    )
    return row, bool(row["created"])


async def link_feedback(
    conn: asyncpg.Connection, enhancement_id: uuid.UUID, vote: str
) -> asyncpg.Record | None:
    return await conn.fetchrow(
        "SELECT * FROM enhancement_feedback WHERE enhancement_id = $1 AND link_vote = $2",
        enhancement_id,
        vote,
    )
