"""Similar tickets and KB articles by full-text *and* meaning, fused into one ranking.

Full-text search finds the technician's own words ("VPN", "MTU", an error code) and misses a
ticket written the way an end user writes ("the screen goes black when I plug in the
projector" against "external display not detected after docking"); embeddings find the latter
and blur exact identifiers. Each source proposes its top candidates and the lists are fused.

The default is a weighted score, ``(1 · ts_rank_cd + 5 · cosine) / 6`` (both in 0..1, missing
from a list counts 0), chosen on the shipped evaluation set over reciprocal rank fusion
(``Σ weight / (60 + rank)``, also available): RRF lets a ticket that full-text found on one
incidental word ("shows") outrank the one whose meaning matches.

The score reported (and shown in the note) is the fused score normalised to 0..1. Vector
candidates below ``min_similarity`` are dropped first: a nearest neighbour always exists, but
an unrelated one must not reach a technician's note.

Similar tickets are then spread out by maximal marginal relevance (:func:`diversify`): a
history holds the same incident many times ("VPN says credentials rejected" three times), and
five copies of one precedent crowd out the right one at rank six. The first ticket is always
the best fused one; each next pick trades its fused score against its cosine similarity to the
tickets already picked (``diversity`` 0.3).

Whether this process can search by vector right now is :class:`VectorAvailability`: the
database may lack the ``vector`` extension (an external PostgreSQL without pgvector) or the
embedder may fail (a remote endpoint down). Either way retrieval continues full-text only — a
note with full-text matches beats no note — and the state is visible: a warning when it
changes, the ``ai_agents_vector_search_available`` gauge, and ``VectorAvailability.detail`` for
the readiness check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

import asyncpg

from core import metric_catalogue as mc
from db.repositories import knowledge, ranking, vectors
from db.repositories.vectors import vector_search_available
from pipeline.models import KBArticle, SimilarTicket, Ticket
from pipeline.observability.metrics import Metrics
from pipeline.retrieval.embeddings import Embedder, ticket_text, with_rate_limit
from pipeline.retrieval.ranking import ranker
from pipeline.retrieval.ranking.features import Candidate, build_candidates
from pipeline.retrieval.ranking.model import RankingModel, RelevanceBar
from pipeline.retrieval.ranking.ranker import diversify
from pipeline.text.ticket_text import html_to_text, letter_trigrams

RRF_K = 60
FusionMethod = Literal["rrf", "weighted"]


@dataclass(frozen=True)
class FusionWeights:
    fulltext: float = 1.0
    vector: float = 1.0


@dataclass(frozen=True)
class RetrievalQuery:
    """One ticket's query in both forms; ``vector`` is None when vector search is off.

    ``ips``, ``tags``, ``trigrams`` and ``as_of`` feed the second stage's features (shared
    addresses, SDP's category, the ticket's own words spelled as written, a precedent's age and
    earlier outcomes as of that moment; now when None)."""

    tsquery: str | None
    vector: list[float] | None
    model: str | None
    exclude_ticket: str
    ips: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    as_of: datetime | None = None
    trigrams: frozenset[str] = frozenset()  # of subject and description (``spelling``)


Ranked = Sequence[tuple[str, float]]  # (id, the source's own score), best first


def fuse(
    rankings: Mapping[str, Ranked],
    weights: Mapping[str, float],
    *,
    method: FusionMethod = "rrf",
    k: int = RRF_K,
) -> list[tuple[str, float]]:
    """Fuse ranked candidate lists → (id, score in 0..1), best first.

    ``rrf``: ``Σ weight / (k + rank)``, divided by the best possible (first everywhere).
    ``weighted``: ``Σ weight · score`` over the sources (cosine similarity, ``ts_rank_cd``
    with normalisation 32, both in 0..1), divided by the sum of the weights. Ties keep the
    order of first appearance, full-text before vector.
    """
    scores: dict[str, float] = {}
    for source, ranked in rankings.items():
        weight = weights.get(source, 1.0)
        for rank, (item, score) in enumerate(ranked, start=1):
            part = weight / (k + rank) if method == "rrf" else weight * max(0.0, score)
            scores[item] = scores.get(item, 0.0) + part
    total = sum(weights.get(source, 1.0) for source in rankings)
    best = (total / (k + 1) if method == "rrf" else total) or 1.0
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    return [(item, round(score / best, 4)) for item, score in ordered]


@dataclass(frozen=True)
class HybridRetrieval:
    candidates: int = 20
    min_similarity: float = 0.2
    weights: FusionWeights = FusionWeights(fulltext=1.0, vector=5.0)
    method: FusionMethod = "weighted"
    diversity: float = 0.3  # similar tickets only; 0 keeps the fused order

    def _weights(self) -> dict[str, float]:
        return {"fulltext": self.weights.fulltext, "vector": self.weights.vector}

    async def _first_stage(
        self, conn: asyncpg.Connection, query: RetrievalQuery
    ) -> tuple[list[tuple[str, float]], dict[str, asyncpg.Record]]:
        """Both sources' candidates fused, best first, and their rows."""
        rows: dict[str, asyncpg.Record] = {}
        rankings: dict[str, list[tuple[str, float]]] = {}
        if query.tsquery is not None and self.weights.fulltext > 0:
            found = await knowledge.search_similar_tickets(
                conn,
                query.tsquery,
                exclude_ticket=query.exclude_ticket,
                limit=self.candidates,
                embedding_model=query.model if query.vector is not None else None,
            )
            rankings["fulltext"] = [(r["ticket_id"], float(r["score"])) for r in found]
            rows.update((r["ticket_id"], r) for r in found)
        if query.vector is not None and query.model is not None and self.weights.vector > 0:
            near = await vectors.search_ticket_vectors(
                conn,
                query.vector,
                model=query.model,
                exclude_ticket=query.exclude_ticket,
                limit=self.candidates,
            )
            near = [r for r in near if float(r["score"]) >= self.min_similarity]
            rankings["vector"] = [(r["ticket_id"], float(r["score"])) for r in near]
            for r in near:
                rows.setdefault(r["ticket_id"], r)
        return fuse(rankings, self._weights(), method=self.method), rows

    async def tickets(
        self, conn: asyncpg.Connection, query: RetrievalQuery, *, limit: int
    ) -> list[SimilarTicket]:
        """The first stage alone: the fused order, spread, the first ``limit``."""
        fused, rows = await self._first_stage(conn, query)
        embedded = {i: r["embedding"] for i, r in rows.items() if r["embedding"] is not None}
        return [
            SimilarTicket(
                ticket_id=i,
                subject=rows[i]["subject"],
                resolution=rows[i]["resolution"],
                score=score,
                resolved_at=rows[i]["resolved_at"],
            )
            for i, score in diversify(fused, embedded, diversity=self.diversity, limit=limit)
        ]

    async def ranking_candidates(
        self, conn: asyncpg.Connection, query: RetrievalQuery
    ) -> list[Candidate]:
        """Every fused candidate with its second-stage features, in the fused order."""
        fused, _ = await self._first_stage(conn, query)
        as_of = query.as_of or datetime.now(UTC)
        details = await ranking.candidate_details(
            conn,
            [i for i, _ in fused],
            tsquery=query.tsquery,
            ips=query.ips,
            tags=query.tags,
            as_of=as_of,
            embedding_model=query.model if query.vector is not None else None,
        )
        return build_candidates(
            fused,
            {r["ticket_id"]: r for r in details},
            query_vector=query.vector,
            as_of=as_of,
            query_trigrams=query.trigrams,
        )

    async def ranked_tickets(
        self,
        conn: asyncpg.Connection,
        query: RetrievalQuery,
        model: RankingModel,
        *,
        limit: int,
    ) -> ranker.Ranked:
        """Both stages: every fused candidate gets the model's probability; those past the
        relevance bar are spread and the first ``limit`` shown."""
        found = await self.ranking_candidates(conn, query)
        return ranker.rank(model, found, limit=limit, diversity=self.diversity)

    async def kb(
        self,
        conn: asyncpg.Connection,
        query: RetrievalQuery,
        *,
        limit: int,
        bar: RelevanceBar | None = None,
    ) -> list[KBArticle]:
        """KB articles by fused score; ``bar`` (on that score) leaves out the weak ones."""
        rows: dict[str, asyncpg.Record] = {}
        rankings: dict[str, list[tuple[str, float]]] = {}
        if query.tsquery is not None and self.weights.fulltext > 0:
            found = await knowledge.search_kb(conn, query.tsquery, limit=self.candidates)
            rankings["fulltext"] = [(r["doc_id"], float(r["score"])) for r in found]
            rows.update((r["doc_id"], r) for r in found)
        if query.vector is not None and query.model is not None and self.weights.vector > 0:
            near = await vectors.search_kb_vectors(
                conn, query.vector, model=query.model, limit=self.candidates
            )
            near = sorted(
                (r for r in near if float(r["score"]) >= self.min_similarity),
                key=lambda r: -float(r["score"]),
            )[: self.candidates]
            rankings["vector"] = [(r["doc_id"], float(r["score"])) for r in near]
            for r in near:
                rows.setdefault(r["doc_id"], r)
        return [
            KBArticle(
                article_id=i,
                title=rows[i]["title"],
                excerpt=_excerpt(rows[i]["excerpt"]),
                score=score,
                url=rows[i]["url"],
            )
            for i, score in _past_bar(fuse(rankings, self._weights(), method=self.method), bar)[
                :limit
            ]
        ]


def _past_bar(fused: list[tuple[str, float]], bar: RelevanceBar | None) -> list[tuple[str, float]]:
    if bar is None:
        return fused
    keeps = bar.keeps([score for _, score in fused])
    return [item for item, keep in zip(fused, keeps, strict=True) if keep]


def _excerpt(text: str, words: int = 40) -> str:
    """Plain text of a headline or chunk, at most ``words`` words."""
    plain = html_to_text(text)
    tokens = plain.split()
    return " ".join(tokens[:words]) + (" …" if len(tokens) > words else "")


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
            trigrams=letter_trigrams(f"{ticket.subject}\n{ticket.description}"),
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
