"""Embedding what an import just committed, without letting an embedding failure undo it.

Rows are committed first and embedded in a second transaction: an embedding endpoint that is
down must not cost the operator the import. The first failure stops embedding for the rest of
the run and is reported (``details["embedding_error"]``); `ai-agents reindex` catches up.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from db.pool import tenant_transaction
from pipeline.retrieval.embeddings import Embedder, EmbeddingError
from pipeline.retrieval.vector_index import TicketText, store_kb_vectors, store_ticket_vectors

from .outcome import ImportResult


class BatchEmbedding:
    def __init__(self, pool: asyncpg.Pool, embedder: Embedder | None, result: ImportResult) -> None:
        self._pool = pool
        self._embedder = embedder
        self._result = result
        if embedder is not None:
            result.details.setdefault("embedded", 0)
            result.details["embedding_model"] = embedder.model

    async def tickets(self, tickets: Sequence[TicketText]) -> None:
        embedder = self._embedder
        if embedder is None or not tickets:
            return
        try:
            async with tenant_transaction(self._pool, self._result.tenant_id) as conn:
                stored = await store_ticket_vectors(conn, embedder, self._result.tenant_id, tickets)
        except EmbeddingError as err:
            self._stop(err)
            return
        self._result.details["embedded"] += stored

    async def documents(self, docs: Sequence[tuple[str, str, str]]) -> None:
        embedder = self._embedder
        if embedder is None or not docs:
            return
        try:
            async with tenant_transaction(self._pool, self._result.tenant_id) as conn:
                for doc_id, title, body in docs:
                    await store_kb_vectors(
                        conn, embedder, self._result.tenant_id, doc_id, title, body
                    )
        except EmbeddingError as err:
            self._stop(err)
            return
        self._result.details["embedded"] += len(docs)

    def _stop(self, err: EmbeddingError) -> None:
        self._embedder = None
        self._result.details["embedding_error"] = (
            f"{err} — rows saved without vectors; run `ai-agents reindex --tenant "
            f"{self._result.tenant_id}`"
        )
