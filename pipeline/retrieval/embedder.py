"""The service's embedder, built once per process from ``AI_AGENTS_EMBEDDING_*``."""

from __future__ import annotations

import asyncio
import logging
from functools import lru_cache

import asyncpg

from core.settings import Settings, get_settings
from db.pool import tenant_transaction
from pipeline.models import Ticket
from pipeline.retrieval.embeddings import Embedder, EmbeddingSettings, build_embedder
from pipeline.retrieval.vector_index import TicketText, store_ticket_vectors


def embedding_settings(settings: Settings) -> EmbeddingSettings:
    key = settings.embedding_api_key
    return EmbeddingSettings(
        base_url=settings.embedding_base_url,
        api_key=key.get_secret_value() if key else None,
        model=settings.embedding_model,
        dimensions=settings.embedding_dimensions,
        timeout_s=settings.llm_timeout_s,
    )


@lru_cache(maxsize=1)
def service_embedder() -> Embedder:
    """One per process: the offline model is loaded once and shared."""
    return build_embedder(embedding_settings(get_settings()))


log = logging.getLogger(__name__)
RESOLVED_EMBED_TIMEOUT_S = 10.0


async def embed_resolved_ticket(pool: asyncpg.Pool, tenant_id: str, ticket: Ticket) -> bool:
    """Embed a ticket the resolved feed just stored; the row is already committed.

    Best effort by design: a slow or failing embedding endpoint must not turn SDP's webhook
    into a failure (SDP would retry a ticket that is stored). The miss is logged, and
    `ai-agents reindex` embeds whatever has no fresh vector.
    """
    try:
        async with asyncio.timeout(RESOLVED_EMBED_TIMEOUT_S):
            async with tenant_transaction(pool, tenant_id) as conn:
                await store_ticket_vectors(
                    conn,
                    service_embedder(),
                    tenant_id,
                    [TicketText(ticket.ticket_id, ticket.subject, ticket.description)],
                )
        return True
    except Exception as exc:  # noqa: BLE001 - logged; reindex repairs it
        log.warning(
            "resolved ticket %s of %s stored without a vector (%s: %s); run ai-agents reindex",
            ticket.ticket_id,
            tenant_id,
            type(exc).__name__,
            exc,
        )
        return False
