"""The second-stage ranking's data (tenant-scoped): what each similar-ticket candidate looks like
next to the new ticket, the fitted models, and the labelled examples they are fitted on.

The deployment's model and the cross-tenant training data are reached only through the
``app_*`` functions of migration 0013, like every other door across tenants.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from db.pool import system_fetch

# Per candidate: the full-text score against the query (for vector-only candidates too); how
# many of the query's lexemes each field holds (the stored tsvector filtered by weight: A
# subject, B description, C resolution; a lexeme in two fields counts in both); whether an
# address of the new ticket appears in its text or a category is shared; and how often it was
# shown before with a known outcome, and right.
_DETAILS = r"""
WITH q AS (
    SELECT CASE WHEN $2 = '' THEN NULL ELSE to_tsquery('english', $2) END AS tsq,
           tsvector_to_array(to_tsvector('english', $2)) AS lexemes
)
SELECT h.ticket_id, h.subject, h.description, h.resolution, h.resolved_at,
       coalesce(ts_rank_cd(h.search, q.tsq, 32), 0) AS fulltext,
       cardinality(q.lexemes) AS query_terms,
       cardinality(ARRAY(SELECT unnest(tsvector_to_array(ts_filter(h.search, '{a}')))
                         INTERSECT SELECT unnest(q.lexemes))) AS subject_hits,
       cardinality(ARRAY(SELECT unnest(tsvector_to_array(ts_filter(h.search, '{b}')))
                         INTERSECT SELECT unnest(q.lexemes))) AS description_hits,
       cardinality(ARRAY(SELECT unnest(tsvector_to_array(ts_filter(h.search, '{c}')))
                         INTERSECT SELECT unnest(q.lexemes))) AS resolution_hits,
       EXISTS (SELECT 1 FROM unnest(h.tags) t WHERE lower(t) = ANY ($4::text[]))
           AS same_category,
       EXISTS (SELECT 1 FROM unnest($3::text[]) ip
               WHERE concat_ws(' ', h.subject, h.description, h.resolution)
                     ~ ('(^|[^0-9A-Fa-f.:])' || regexp_replace(ip, '([.])', '\\.', 'g')
                        || '($|[^0-9A-Fa-f.:])')) AS shared_ip,
       o.shown_before, o.right_before,
       e.embedding
FROM ticket_history h CROSS JOIN q
CROSS JOIN LATERAL (
    SELECT count(*) AS shown_before, count(*) FILTER (WHERE r.label) AS right_before
    FROM ranking_examples r
    WHERE r.candidate_id = h.ticket_id AND r.label IS NOT NULL AND r.shown
      AND r.labelled_at < $5) o
LEFT JOIN ticket_embeddings e ON e.ticket_id = h.ticket_id AND e.model = $6
WHERE h.ticket_id = ANY ($1::text[])
"""


async def candidate_details(
    conn: asyncpg.Connection,
    ticket_ids: Sequence[str],
    *,
    tsquery: str | None,
    ips: Sequence[str],
    tags: Sequence[str],
    as_of: datetime,
    embedding_model: str | None,
) -> list[asyncpg.Record]:
    """What the ranker's features are made of, for each of the tenant's ``ticket_ids``."""
    if not ticket_ids:
        return []
    return await conn.fetch(
        _DETAILS,
        list(ticket_ids),
        tsquery or "",
        list(ips),
        [t.lower() for t in tags],
        as_of,
        embedding_model,
    )


async def tenant_model(conn: asyncpg.Connection) -> asyncpg.Record | None:
    """The tenant's newest model, inside its transaction (None: it has none of its own)."""
    return await conn.fetchrow(
        """SELECT id, fitted_at, examples, model, report FROM ranking_models
           ORDER BY fitted_at DESC, id DESC LIMIT 1"""
    )


async def deployment_model(pool: asyncpg.Pool) -> asyncpg.Record | None:
    rows = await system_fetch(pool, "SELECT * FROM app_deployment_ranking_model()")
    return rows[0] if rows else None


async def store_tenant_model(
    conn: asyncpg.Connection,
    tenant_id: str,
    *,
    examples: int,
    model: dict[str, Any],
    report: dict[str, Any],
) -> int:
    return await conn.fetchval(
        """INSERT INTO ranking_models (tenant_id, examples, model, report)
           VALUES ($1, $2, $3, $4) RETURNING id""",
        tenant_id,
        examples,
        model,
        report,
    )


async def store_deployment_model(
    pool: asyncpg.Pool, *, examples: int, model: dict[str, Any], report: dict[str, Any]
) -> int:
    rows = await system_fetch(
        pool,
        "SELECT app_store_deployment_ranking_model($1, $2, $3) AS id",
        examples,
        model,
        report,
    )
    return int(rows[0]["id"])


async def record_examples(
    conn: asyncpg.Connection,
    tenant_id: str,
    enhancement_id: uuid.UUID,
    feature_names: Sequence[str],
    rows: Sequence[tuple[str, int, bool, float, Sequence[float]]],
) -> None:
    """(candidate id, rank, shown, probability, features) per candidate of one enhancement; a
    re-run of the same enhancement replaces its rows."""
    await conn.execute("DELETE FROM ranking_examples WHERE enhancement_id = $1", enhancement_id)
    await conn.executemany(
        """INSERT INTO ranking_examples (tenant_id, enhancement_id, candidate_id, rank, shown,
               probability, features, feature_names)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (tenant_id, enhancement_id, cid, rank, shown, prob, list(features), list(feature_names))
            for cid, rank, shown, prob, features in rows
        ],
    )


async def store_confidence(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    *,
    confidence: float,
    inputs: dict[str, Any],
) -> None:
    await conn.execute(
        "UPDATE enhancements SET confidence = $2, confidence_inputs = $3 WHERE id = $1",
        enhancement_id,
        confidence,
        inputs,
    )


async def latest_ranked_enhancement(conn: asyncpg.Connection, ticket_id: str) -> uuid.UUID | None:
    """The ticket's newest completed enhancement that kept ranking examples."""
    return await conn.fetchval(
        """SELECT e.id FROM enhancements e
           WHERE e.ticket_id = $1 AND e.status = 'completed'
             AND EXISTS (SELECT 1 FROM ranking_examples r WHERE r.enhancement_id = e.id)
           ORDER BY e.received_at DESC LIMIT 1""",
        ticket_id,
    )


async def examples_to_label(
    conn: asyncpg.Connection, enhancement_id: uuid.UUID
) -> list[asyncpg.Record]:
    """An enhancement's candidates with their resolutions (from the history), first first."""
    return await conn.fetch(
        """SELECT r.candidate_id, r.rank, coalesce(h.resolution, '') AS resolution
           FROM ranking_examples r
           LEFT JOIN ticket_history h ON h.ticket_id = r.candidate_id
           WHERE r.enhancement_id = $1 ORDER BY r.rank""",
        enhancement_id,
    )


async def store_labels(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    labels: Sequence[tuple[str, bool, float]],
    *,
    first_was_right: bool,
) -> None:
    """(candidate id, label, similarity) per candidate, and whether the confidence came true."""
    await conn.executemany(
        """UPDATE ranking_examples SET label = $3, similarity = $4, labelled_at = now()
           WHERE enhancement_id = $1 AND candidate_id = $2""",
        [(enhancement_id, cid, label, similarity) for cid, label, similarity in labels],
    )
    await conn.execute(
        "UPDATE enhancements SET confidence_outcome = $2 WHERE id = $1",
        enhancement_id,
        first_was_right,
    )


_EXAMPLES = """
WITH judged AS (
    SELECT e.id, e.received_at, e.confidence_inputs, e.confidence_outcome,
           EXISTS (SELECT 1 FROM enhancement_feedback f
                   WHERE f.enhancement_id = e.id
                     AND (f.feedback_type = 'thumbs_down'
                          OR (f.feedback_type = 'rating' AND f.rating_value <= 2))) AS disliked
    FROM enhancements e
    WHERE EXISTS (SELECT 1 FROM ranking_examples r WHERE r.enhancement_id = e.id)
    ORDER BY e.received_at DESC LIMIT $1
)
SELECT current_setting('app.current_tenant_id', true) AS tenant_id, j.id AS enhancement_id,
       j.received_at, r.candidate_id, r.rank, r.shown, r.probability, r.features,
       r.feature_names,
       coalesce(r.label, CASE WHEN j.disliked AND r.shown THEN false END) AS label,
       j.confidence_inputs,
       coalesce(j.confidence_outcome, CASE WHEN j.disliked THEN false END) AS confidence_outcome
FROM judged j JOIN ranking_examples r ON r.enhancement_id = j.id
WHERE r.label IS NOT NULL OR j.disliked
"""


async def tenant_examples(conn: asyncpg.Connection, *, enhancements: int) -> list[asyncpg.Record]:
    """The tenant's labelled examples of its newest ``enhancements`` enhancements (the same
    rows and feedback rule as ``app_ranking_examples``)."""
    return await conn.fetch(_EXAMPLES, enhancements)


async def all_examples(pool: asyncpg.Pool, *, enhancements: int) -> list[asyncpg.Record]:
    return await system_fetch(pool, "SELECT * FROM app_ranking_examples($1)", enhancements)


async def confidence_stats(pool: asyncpg.Pool, *, days: int) -> list[asyncpg.Record]:
    return await system_fetch(pool, "SELECT * FROM app_confidence_stats($1)", days)


async def tenant_confidence_rows(
    conn: asyncpg.Connection, *, start: datetime | None, end: datetime | None
) -> list[asyncpg.Record]:
    """(confidence, came true) of the tenant's notes whose outcome is known."""
    return await conn.fetch(
        """SELECT confidence, confidence_outcome FROM enhancements
           WHERE confidence IS NOT NULL AND confidence_outcome IS NOT NULL
             AND ($1::timestamptz IS NULL OR suggestion_checked_at >= $1)
             AND ($2::timestamptz IS NULL OR suggestion_checked_at < $2)""",
        start,
        end,
    )
