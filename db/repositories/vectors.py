"""Stored embeddings of resolved tickets and KB chunks, and nearest-neighbour search over them.

Vectors are ``real[]`` columns (see migration 0007) cast to pgvector's ``vector(d)`` at query
time; the HNSW indexes are on exactly that expression (``WHERE dimensions = d``), so a query
written the same way uses them. Every search filters on the embedder's ``model`` and
``dimensions``: vectors from another model are stale, never compared. All functions run inside
a tenant transaction, so row-level security scopes them to one tenant.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

HNSW_EF_SEARCH = 200  # candidates the index walks; RLS filters other tenants' rows afterwards


async def vector_search_available(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')")
    )


async def upsert_ticket_embedding(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    ticket_id: str,
    model: str,
    content_hash: str,
    embedding: Sequence[float],
) -> None:
    await conn.execute(
        """INSERT INTO ticket_embeddings (tenant_id, ticket_id, model, dimensions, content_hash,
               embedding)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET model = EXCLUDED.model,
               dimensions = EXCLUDED.dimensions, content_hash = EXCLUDED.content_hash,
               embedding = EXCLUDED.embedding, embedded_at = now()""",
        tenant_id,
        ticket_id,
        model,
        len(embedding),
        content_hash,
        list(embedding),
    )


async def replace_kb_chunks(
    conn: asyncpg.Connection,
    *,
    tenant_id: str,
    doc_id: str,
    model: str,
    content_hash: str,
    chunks: Sequence[tuple[str, Sequence[float]]],
) -> None:
    """A document's chunks as one unit: an edited article may have fewer chunks than before."""
    await conn.execute("DELETE FROM kb_chunks WHERE doc_id = $1", doc_id)
    await conn.executemany(
        """INSERT INTO kb_chunks (tenant_id, doc_id, chunk_no, chunk_text, model, dimensions,
               content_hash, embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
        [
            (tenant_id, doc_id, n, text, model, len(vector), content_hash, list(vector))
            for n, (text, vector) in enumerate(chunks)
        ],
    )


async def ticket_batch(conn: asyncpg.Connection, *, after: str, limit: int) -> list[asyncpg.Record]:
    """Resolved tickets in id order after ``after``, with what their stored vector was made of
    (keyset paging: a resumed reindex starts where it stopped, not at an offset)."""
    return await conn.fetch(
        """SELECT h.ticket_id, h.subject, h.description, e.model, e.dimensions, e.content_hash
           FROM ticket_history h
           LEFT JOIN ticket_embeddings e USING (tenant_id, ticket_id)
           WHERE h.ticket_id > $1 ORDER BY h.ticket_id LIMIT $2""",
        after,
        limit,
    )


async def kb_batch(conn: asyncpg.Connection, *, after: str, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(
        """SELECT d.doc_id, d.title, d.body, c.model, c.dimensions, c.content_hash
           FROM kb_documents d
           LEFT JOIN kb_chunks c ON c.tenant_id = d.tenant_id AND c.doc_id = d.doc_id
                                AND c.chunk_no = 0
           WHERE d.doc_id > $1 ORDER BY d.doc_id LIMIT $2""",
        after,
        limit,
    )


async def count_indexable(conn: asyncpg.Connection) -> tuple[int, int]:
    row = await conn.fetchrow("""SELECT (SELECT count(*) FROM ticket_history) AS tickets,
                                        (SELECT count(*) FROM kb_documents) AS docs""")
    return int(row["tickets"]), int(row["docs"])


async def _widen_search(conn: asyncpg.Connection) -> None:
    await conn.execute(f"SET LOCAL hnsw.ef_search = {HNSW_EF_SEARCH}")


async def search_ticket_vectors(
    conn: asyncpg.Connection,
    embedding: Sequence[float],
    *,
    model: str,
    exclude_ticket: str,
    limit: int,
) -> list[asyncpg.Record]:
    """Nearest resolved tickets by cosine similarity (1 = same direction).

    The nearest rows come from a subquery that touches ``ticket_embeddings`` alone, ordered by
    exactly the indexed expression, so the planner can walk the HNSW index; joining
    ``ticket_history`` first would make it scan every row of the tenant instead.
    """
    dims = int(len(embedding))
    await _widen_search(conn)
    return await conn.fetch(
        f"""WITH nearest AS MATERIALIZED (
                SELECT ticket_id, model, embedding,
                       embedding::vector({dims}) <=> $1::real[]::vector({dims}) AS distance
                FROM ticket_embeddings WHERE dimensions = {dims}
                ORDER BY embedding::vector({dims}) <=> $1::real[]::vector({dims})
                LIMIT $4 * 5)
            SELECT h.ticket_id, h.subject, h.resolution, h.resolved_at, 1 - n.distance AS score,
                   n.embedding
            FROM nearest n JOIN ticket_history h USING (ticket_id)
            WHERE n.model = $2 AND n.ticket_id <> $3
            ORDER BY n.distance LIMIT $4""",
        list(embedding),
        model,
        exclude_ticket,
        limit,
    )


async def search_kb_vectors(
    conn: asyncpg.Connection, embedding: Sequence[float], *, model: str, limit: int
) -> list[asyncpg.Record]:
    """Nearest KB documents, each by its best chunk (which becomes the excerpt)."""
    dims = int(len(embedding))
    await _widen_search(conn)
    return await conn.fetch(
        f"""WITH nearest AS MATERIALIZED (
                SELECT doc_id, chunk_text, model,
                       1 - (embedding::vector({dims}) <=> $1::real[]::vector({dims})) AS score
                FROM kb_chunks WHERE dimensions = {dims}
                ORDER BY embedding::vector({dims}) <=> $1::real[]::vector({dims})
                LIMIT $3 * 4)
            SELECT DISTINCT ON (n.doc_id) n.doc_id, d.title, d.url, n.chunk_text AS excerpt,
                   n.score
            FROM nearest n JOIN kb_documents d ON d.doc_id = n.doc_id
            WHERE n.model = $2
            ORDER BY n.doc_id, n.score DESC""",
        list(embedding),
        model,
        limit,
    )
