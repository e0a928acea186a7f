"""Resolved-ticket history, KB documents and the asset inventory (tenant-scoped), and the
searches the context gatherer runs over them."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def upsert_resolved_ticket(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    ticket_id: str,
    subject: str,
    description: str,
    resolution: str,
    priority: str | None,
    tags: list[str],
    resolved_at: datetime | None,
) -> bool:
    """Insert or refresh one resolved ticket; True when it was new."""
    return await conn.fetchval(
        """INSERT INTO ticket_history (tenant_id, ticket_id, subject, description, resolution,
               priority, tags, resolved_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
           ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET subject = EXCLUDED.subject,
               description = EXCLUDED.description, resolution = EXCLUDED.resolution,
               priority = EXCLUDED.priority, tags = EXCLUDED.tags,
               resolved_at = EXCLUDED.resolved_at, updated_at = now()
           RETURNING (xmax = 0)""",
        tenant_id,
        ticket_id,
        subject,
        description,
        resolution,
        priority,
        tags,
        resolved_at,
    )


async def upsert_kb_document(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    doc_id: str,
    title: str,
    body: str,
    url: str | None,
    source_path: str | None,
) -> bool:
    return await conn.fetchval(
        """INSERT INTO kb_documents (tenant_id, doc_id, title, body, url, source_path)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant_id, doc_id) DO UPDATE SET title = EXCLUDED.title,
               body = EXCLUDED.body, url = EXCLUDED.url, source_path = EXCLUDED.source_path,
               updated_at = now()
           RETURNING (xmax = 0)""",
        tenant_id,
        doc_id,
        title,
        body,
        url,
        source_path,
    )


async def upsert_asset(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    network: str,
    hostname: str | None,
    role: str | None,
    owner: str | None,
    location: str | None,
) -> bool:
    return await conn.fetchval(
        """INSERT INTO assets (tenant_id, network, hostname, role, owner, location)
           VALUES ($1, $2::cidr, $3, $4, $5, $6)
           ON CONFLICT (tenant_id, network) DO UPDATE SET hostname = EXCLUDED.hostname,
               role = EXCLUDED.role, owner = EXCLUDED.owner, location = EXCLUDED.location,
               updated_at = now()
           RETURNING (xmax = 0)""",
        tenant_id,
        network,
        hostname,
        role,
        owner,
        location,
    )


async def search_similar_tickets(
    conn: asyncpg.Connection,
    query: str,
    *,
    exclude_ticket: str,
    limit: int = 5,
    embedding_model: str | None = None,
) -> list[asyncpg.Record]:
    """Full-text ranking over subject (A), description (B), resolution (C).

    ``query`` is a tsquery built from the ticket's salient terms, OR-ed so partial overlap
    still ranks; cover density rewards terms that appear close together.

    Two stages, because an OR of common words matches thousands of a large tenant's tickets.
    The first reads ``ticket_terms`` (each ticket's lexemes, migration 0010) through its
    primary key — the GIN index on ``search`` is unusable under row-level security, since
    ``@@`` is not leakproof, and testing ``@@`` on every ticket costs time linear in the
    tenant's size — and keeps the best ``limit * 10`` (at least 100) by the summed field weight
    of the lexemes they share with the query (subject 1.0, description 0.4, resolution 0.2, as
    ``ts_rank`` weighs them). Only those get ``ts_rank_cd``, which orders the result.

    ``embedding`` is each ticket's stored vector of ``embedding_model`` (NULL without one), so
    the hybrid ranking can tell near-duplicate candidates apart without another round trip.
    """
    return await conn.fetch(
        """WITH best AS (
               SELECT ticket_id, sum(weight) AS overlap FROM ticket_terms
               WHERE lexeme = ANY (tsvector_to_array(to_tsvector('english', $1)))
               GROUP BY ticket_id
               ORDER BY overlap DESC LIMIT greatest($3 * 10, 100)),
           ranked AS (
               SELECT h.ticket_id, h.subject, h.resolution, h.resolved_at,
                      ts_rank_cd(h.search, q, 32) AS score
               FROM best JOIN ticket_history h USING (ticket_id), to_tsquery('english', $1) q
               WHERE h.ticket_id <> $2 AND h.search @@ q
               ORDER BY score DESC, h.resolved_at DESC NULLS LAST LIMIT $3)
           SELECT r.*, e.embedding
           FROM ranked r LEFT JOIN ticket_embeddings e
                ON e.ticket_id = r.ticket_id AND e.model = $4
           ORDER BY r.score DESC, r.resolved_at DESC NULLS LAST""",
        query,
        exclude_ticket,
        limit,
        embedding_model,
    )


async def search_kb(
    conn: asyncpg.Connection, query: str, *, limit: int = 3
) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT doc_id, title, url,
                  ts_headline('english', body, q, 'MaxWords=40, MinWords=15, MaxFragments=1')
                      AS excerpt,
                  ts_rank_cd(search, q, 32) AS score
           FROM kb_documents, to_tsquery('english', $1) q
           WHERE search @@ q ORDER BY score DESC LIMIT $2""",
        query,
        limit,
    )


async def match_assets(conn: asyncpg.Connection, ips: list[str]) -> list[asyncpg.Record]:
    """For each IP the most specific inventory entry containing it (a host before its subnet)."""
    return await conn.fetch(
        """SELECT DISTINCT ON (ip) host(ip) AS ip, network::text AS network,
                  masklen(network) = CASE WHEN family(ip) = 4 THEN 32 ELSE 128 END AS is_host,
                  hostname, role, owner, location
           FROM unnest($1::inet[]) AS ip
           JOIN assets ON network >>= ip
           ORDER BY ip, masklen(network) DESC""",
        ips,
    )
