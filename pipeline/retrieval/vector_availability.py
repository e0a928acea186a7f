"""Whether this process can search by vector right now, and the query vector when it can.

Two things can switch vector search off: the database lacks the ``vector`` extension (an
external PostgreSQL without pgvector), or the embedder fails (a remote endpoint down). Either
way retrieval continues full-text only — a note with full-text matches beats no note — and the
state is visible: a warning when it changes, the ``ai_agents_vector_search_available`` gauge,
and :meth:`VectorAvailability.detail` for the readiness check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from core import metric_catalogue as mc
from db.repositories.vectors import vector_search_available
from pipeline.models import Ticket
from pipeline.observability.metrics import Metrics
from pipeline.retrieval.embeddings import Embedder, ticket_text, with_rate_limit
from pipeline.retrieval.hybrid import RetrievalQuery

log = logging.getLogger(__name__)
BeforeEmbed = Callable[[str], Awaitable[None]]  # tenant id -> waits on its LLM rate limit


class VectorAvailability:
    def __init__(
        self,
        pool: asyncpg.Pool,
        embedder: Embedder | None,
        metrics: Metrics,
        *,
        recheck_s: float = 60.0,
        embed_timeout_s: float = 3.0,
        before_embed: BeforeEmbed | None = None,
    ) -> None:
        self._pool = pool
        self._embedder = embedder
        self._metrics = metrics
        self._recheck_s = recheck_s
        self._embed_timeout_s = embed_timeout_s
        self._before_embed = before_embed
        self._extension: bool | None = None
        self._checked_at = 0.0
        self._reason: str | None = None if embedder else "no embedder configured"

    async def _extension_present(self) -> bool:
        if self._extension is None or time.monotonic() - self._checked_at > self._recheck_s:
            async with self._pool.acquire() as conn:
                self._extension = await vector_search_available(conn)
            self._checked_at = time.monotonic()
        return self._extension

    def _set(self, reason: str | None) -> None:
        if reason != self._reason:
            if reason is None:
                log.info("vector search available again: retrieval is hybrid")
            else:
                log.warning(
                    "vector search unavailable (%s): similar tickets and KB by full-text only",
                    reason,
                )
        self._reason = reason
        self._metrics.set(mc.VECTOR_SEARCH_AVAILABLE, 0.0 if reason else 1.0, {})

    def detail(self) -> str:
        """``ok`` or why retrieval is full-text only (for ``/api/v1/ready``)."""
        return "ok" if self._reason is None else f"full-text only: {self._reason}"

    async def query(self, tenant_id: str, tsquery: str | None, ticket: Ticket) -> RetrievalQuery:
        vector: list[float] | None = None
        embedder = self._embedder
        if embedder is not None:
            vector = await self._embed(tenant_id, embedder, ticket)
        return RetrievalQuery(
            tsquery=tsquery,
            vector=vector,
            model=embedder.model if embedder else None,
            exclude_ticket=ticket.ticket_id,
        )

    async def _embed(
        self, tenant_id: str, embedder: Embedder, ticket: Ticket
    ) -> list[float] | None:
        text = ticket_text(ticket.subject, ticket.description)
        if not text:
            return None
        try:
            if not await self._extension_present():
                self._set("the pgvector extension is not installed in the database")
                return None
        except (OSError, asyncpg.PostgresError) as exc:
            self._set(f"cannot check the pgvector extension: {type(exc).__name__}")
            return None
        hook = self._before_embed

        async def before_call() -> None:
            if hook is not None:
                await hook(tenant_id)

        try:
            limited = with_rate_limit(embedder, before_call)
            async with asyncio.timeout(self._embed_timeout_s):
                vectors = await limited.embed([text])
        except Exception as exc:  # noqa: BLE001 - any embedder failure means full-text only
            self._set(f"embedding failed: {type(exc).__name__}: {str(exc)[:120]}")
            return None
        self._set(None)
        return vectors[0]
