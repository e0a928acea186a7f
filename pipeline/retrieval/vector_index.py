"""Keeping the stored vectors in step with tickets and KB articles.

Importers and the resolved-ticket webhook embed as they write (:func:`store_ticket_vectors`,
:func:`store_kb_vectors`); :func:`reindex_tenant` catches up on whatever is missing or stale —
rows written while embedding failed, or every row after the embedding model changed. A row
is stale when its vector's model, dimension or source-text hash differs from what the current
embedder would produce, so a reindex is resumable by construction: an interrupted run leaves
the finished rows fresh, and the next run skips them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from db.pool import tenant_transaction
from db.repositories import vectors
from pipeline.retrieval.embeddings import Embedder, ticket_text

CHUNK_WORDS = 120
BATCH = 64
_PARAGRAPH = re.compile(r"\n\s*\n")

ReindexProgress = Callable[[str, int, int], None]  # (kind, done, total)


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def kb_chunks(title: str, body: str, *, words: int = CHUNK_WORDS) -> list[str]:
    """Paragraph-aligned chunks of about ``words`` words, each prefixed with the title.

    The title keeps every chunk about its article ("VPN troubleshooting: check the MTU..."); a
    paragraph longer than a chunk is split on word boundaries.
    """
    pieces: list[list[str]] = []
    current: list[str] = []
    for paragraph in _PARAGRAPH.split(body or ""):
        tokens = paragraph.split()
        if current and len(current) + len(tokens) > words:  # keep paragraphs whole if we can
            pieces.append(current)
            current = []
        while tokens:
            room = words - len(current)
            if room <= 0:
                pieces.append(current)
                current, room = [], words
            current += tokens[:room]
            tokens = tokens[room:]
    if current or not pieces:
        pieces.append(current)
    prefix = title.strip()
    return [f"{prefix}\n{' '.join(p)}".strip() for p in pieces]


@dataclass(frozen=True)
class TicketText:
    ticket_id: str
    subject: str
    description: str

    @property
    def text(self) -> str:
        return ticket_text(self.subject, self.description)


async def store_ticket_vectors(
    conn: asyncpg.Connection,
    embedder: Embedder,
    tenant_id: str,
    tickets: Sequence[TicketText],
    vectors_: Sequence[Sequence[float]] | None = None,
) -> int:
    """Embed (unless given) and store one vector per ticket; returns how many were stored."""
    texts = [t.text for t in tickets]
    embedded = list(vectors_) if vectors_ is not None else await embedder.embed(texts)
    for ticket, text, vector in zip(tickets, texts, embedded, strict=True):
        await vectors.upsert_ticket_embedding(
            conn,
            tenant_id=tenant_id,
            ticket_id=ticket.ticket_id,
            model=embedder.model,
            content_hash=content_hash(text),
            embedding=vector,
        )
    return len(tickets)


def kb_source(title: str, body: str) -> str:
    return f"{title}\n{body}"


async def store_kb_vectors(
    conn: asyncpg.Connection, embedder: Embedder, tenant_id: str, doc_id: str, title: str, body: str
) -> int:
    chunks = kb_chunks(title, body)
    embedded = await embedder.embed(chunks)
    await vectors.replace_kb_chunks(
        conn,
        tenant_id=tenant_id,
        doc_id=doc_id,
        model=embedder.model,
        content_hash=content_hash(kb_source(title, body)),
        chunks=list(zip(chunks, embedded, strict=True)),
    )
    return len(chunks)


def _fresh(row: asyncpg.Record, embedder: Embedder, text: str) -> bool:
    return (
        row["model"] == embedder.model
        and row["dimensions"] == embedder.dimensions
        and row["content_hash"] == content_hash(text)
    )


@dataclass
class ReindexResult:
    tenant_id: str
    model: str
    dimensions: int
    tickets_total: int = 0
    tickets_embedded: int = 0
    docs_total: int = 0
    docs_embedded: int = 0
    chunks_embedded: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


async def reindex_tenant(
    pool: asyncpg.Pool,
    tenant_id: str,
    embedder: Embedder,
    *,
    progress: ReindexProgress | None = None,
    batch: int = BATCH,
) -> ReindexResult:
    """Embed every missing or stale ticket and KB vector of one tenant, a batch per commit."""
    result = ReindexResult(tenant_id, embedder.model, embedder.dimensions)
    async with tenant_transaction(pool, tenant_id) as conn:
        result.tickets_total, result.docs_total = await vectors.count_indexable(conn)
    done, after = 0, ""
    while True:
        async with tenant_transaction(pool, tenant_id) as conn:
            rows = await vectors.ticket_batch(conn, after=after, limit=batch)
            if not rows:
                break
            todo = [TicketText(r["ticket_id"], r["subject"], r["description"]) for r in rows]
            stale = [t for t, r in zip(todo, rows, strict=True) if not _fresh(r, embedder, t.text)]
            if stale:
                result.tickets_embedded += await store_ticket_vectors(
                    conn, embedder, tenant_id, stale
                )
        after, done = rows[-1]["ticket_id"], done + len(rows)
        if progress is not None:
            progress("tickets", done, result.tickets_total)
    done, after = 0, ""
    while True:
        async with tenant_transaction(pool, tenant_id) as conn:
            rows = await vectors.kb_batch(conn, after=after, limit=max(1, batch // 8))
            if not rows:
                break
            for row in rows:
                if not _fresh(row, embedder, kb_source(row["title"], row["body"])):
                    result.chunks_embedded += await store_kb_vectors(
                        conn, embedder, tenant_id, row["doc_id"], row["title"], row["body"]
                    )
                    result.docs_embedded += 1
        after, done = rows[-1]["doc_id"], done + len(rows)
        if progress is not None:
            progress("kb", done, result.docs_total)
    return result
