"""Gather what a technician would look up: similar resolved tickets, KB articles, and what the
ticket's IP addresses are. Sources run concurrently, each under its own timeout; a slow or
failing source is recorded and the rest of the context is still used.

Tickets and KB are retrieved by full-text and by meaning (embeddings in pgvector), fused into
one ranking (:mod:`pipeline.retrieval.hybrid`). Without the ``vector`` extension, or while the
embedder fails, retrieval is full-text only: a warning is logged (once per state change) and
``ai_agents_vector_search_available`` reads 0.

Similar tickets then pass the second stage (:mod:`pipeline.retrieval.ranking`): the tenant's
learned model ranks every fused candidate and its relevance bar decides which the note shows;
KB articles pass the same model's bar on their fused score. The ranking travels with the
context (``TicketContext.ranking``) for the note's confidence, explain and the next refit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg

from core import metric_catalogue as mc
from db.pool import tenant_transaction
from db.repositories import knowledge
from pipeline.models import (
    AssetMatch,
    KBArticle,
    RankingRecord,
    SimilarTicket,
    SourceName,
    SourceOutcome,
    Ticket,
    TicketContext,
)
from pipeline.observability.metrics import InMemoryMetrics, Metrics
from pipeline.observability.tracing import tracer
from pipeline.retrieval.embeddings import Embedder
from pipeline.retrieval.hybrid import (
    BeforeEmbed,
    HybridRetrieval,
    RetrievalQuery,
    VectorAvailability,
)
from pipeline.retrieval.ranking.model import RankingModel
from pipeline.retrieval.ranking.store import RankingModels
from pipeline.text.ticket_text import extract_ips, salient_terms, tsquery_for

FetchTicket = Callable[[str, str], Awaitable[Ticket]]  # (tenant_id, ticket_id) -> Ticket


class _Found(list[SimilarTicket]):
    """The shown similar tickets (a list, so the source counts them) and the whole ranking."""

    def __init__(self, shown: list[SimilarTicket], record: RankingRecord) -> None:
        super().__init__(shown)
        self.record = record


class ContextGatherer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        fetch_ticket: FetchTicket | None = None,
        source_timeout_s: float = 5.0,
        similar_limit: int = 5,
        kb_limit: int = 3,
        embedder: Embedder | None = None,
        retrieval: HybridRetrieval | None = None,
        metrics: Metrics | None = None,
        before_embed: BeforeEmbed | None = None,
        models: RankingModels | None = None,
    ) -> None:
        self._pool = pool
        self._models = models or RankingModels(pool)
        self._retrieval = retrieval or HybridRetrieval()
        self._metrics = metrics or InMemoryMetrics()
        self.vectors = VectorAvailability(pool, embedder, self._metrics, before_embed=before_embed)
        self._fetch_ticket = fetch_ticket
        self._timeout = source_timeout_s
        self._similar_limit = similar_limit
        self._kb_limit = kb_limit

    async def gather(
        self, tenant_id: str, ticket: Ticket, *, needs_fetch: bool = False
    ) -> TicketContext:
        sources: list[SourceOutcome] = []
        if needs_fetch and self._fetch_ticket is not None:
            fetched, outcome = await self._timed(
                "sdp_ticket",
                self._fetch_ticket(tenant_id, ticket.ticket_id),
                timeout_s=max(self._timeout, 30.0),
                tenant_id=tenant_id,
            )
            sources.append(outcome)
            if fetched is not None:
                ticket = _merge(ticket, fetched)

        terms = salient_terms(ticket.subject, ticket.description)
        ips = extract_ips(f"{ticket.subject}\n{ticket.description}")
        query = await self.vectors.query(tenant_id, tsquery_for(terms), ticket)
        query = replace(query, ips=tuple(ips), tags=tuple(ticket.tags))
        model = await self._models.for_tenant(tenant_id)
        similar, kb, assets = await asyncio.gather(
            self._timed(
                "similar_tickets",
                self._similar(tenant_id, query, model),
                tenant_id=tenant_id,
            ),
            self._timed("kb_articles", self._kb(tenant_id, query, model), tenant_id=tenant_id),
            self._timed("ip_assets", self._assets(tenant_id, ips), tenant_id=tenant_id),
        )
        sources += [similar[1], kb[1], assets[1]]
        matched = assets[0] or []
        found = {a.ip for a in matched}
        return TicketContext(
            ticket=ticket,
            similar_tickets=list(similar[0] or []),
            kb_articles=kb[0] or [],
            assets=matched,
            unmatched_ips=[ip for ip in ips if ip not in found],
            sources=sources,
            ranking=similar[0].record if isinstance(similar[0], _Found) else None,
        )

    async def _timed(
        self,
        name: SourceName,
        work: Awaitable[Any],
        timeout_s: float | None = None,
        *,
        tenant_id: str | None = None,
    ) -> tuple[Any, SourceOutcome]:
        with tracer().start_as_current_span(f"context.{name}") as span:
            if tenant_id is not None:
                span.set_attribute("tenant.id", tenant_id)
            result, outcome = await self._timed_work(name, work, timeout_s)
            span.set_attribute("context.status", outcome.status)
            span.set_attribute("context.items", outcome.items)
            return result, outcome

    async def _timed_work(
        self, name: SourceName, work: Awaitable[Any], timeout_s: float | None
    ) -> tuple[Any, SourceOutcome]:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(timeout_s or self._timeout):
                result = await work
        except TimeoutError:
            return None, SourceOutcome(
                name=name, status="timeout", duration_ms=_ms(started), error="timed out"
            )
        except Exception as exc:  # noqa: BLE001 - one source failing must not sink the others
            return None, SourceOutcome(
                name=name,
                status="error",
                duration_ms=_ms(started),
                error=f"{type(exc).__name__}: {str(exc)[:200]}",
            )
        items = len(result) if isinstance(result, list) else int(result is not None)
        return result, SourceOutcome(
            name=name, status="ok" if items else "empty", duration_ms=_ms(started), items=items
        )

    async def _similar(
        self, tenant_id: str, query: RetrievalQuery, model: RankingModel
    ) -> list[SimilarTicket]:
        if query.tsquery is None and query.vector is None:
            return _Found([], model.record([], [], set()))
        started = time.perf_counter()
        async with tenant_transaction(self._pool, tenant_id) as conn:
            ranked = await self._retrieval.ranked_tickets(
                conn, query, model, limit=self._similar_limit
            )
        self._metrics.observe(
            mc.RETRIEVAL_LATENCY, time.perf_counter() - started, {"source": "tickets"}
        )
        shown = [
            SimilarTicket(
                ticket_id=c.ticket_id,
                subject=c.subject,
                resolution=c.resolution,
                score=c.fused,
                resolved_at=c.resolved_at,
                relevance=round(p, 4),
            )
            for c, p in ranked.shown
        ]
        return _Found(shown, ranked.record)

    async def _kb(
        self, tenant_id: str, query: RetrievalQuery, model: RankingModel
    ) -> list[KBArticle]:
        if query.tsquery is None and query.vector is None:
            return []
        started = time.perf_counter()
        async with tenant_transaction(self._pool, tenant_id) as conn:
            found = await self._retrieval.kb(conn, query, limit=self._kb_limit, bar=model.kb_bar)
        self._metrics.observe(mc.RETRIEVAL_LATENCY, time.perf_counter() - started, {"source": "kb"})
        return found

    async def _assets(self, tenant_id: str, ips: list[str]) -> list[AssetMatch]:
        if not ips:
            return []
        async with tenant_transaction(self._pool, tenant_id) as conn:
            rows = await knowledge.match_assets(conn, ips)
        return [
            AssetMatch(
                ip=r["ip"],
                match="host" if r["is_host"] else "subnet",
                network=r["network"],
                hostname=r["hostname"],
                role=r["role"],
                owner=r["owner"],
                location=r["location"],
            )
            for r in rows
        ]


def _merge(ticket: Ticket, fetched: Ticket) -> Ticket:
    return ticket.model_copy(
        update={
            k: v
            for k, v in fetched.model_dump().items()
            if v not in (None, "") and k != "ticket_id"
        }
    )


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
