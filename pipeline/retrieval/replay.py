"""Evaluate the learned ranking honestly: collect labelled queries the way the service would
have seen them, fit on some, score on others.

:func:`replay_history` walks a tenant's resolved tickets in time order on an empty history:
each ticket is first asked as a new ticket at its creation time, against only the tickets
resolved before it, then stored at its resolution time. So a replayed ticket's candidates,
features and labels are exactly what the live service had at that moment, and a date splits
the queries into those a model may be fitted on (before) and those it is scored on (after).
:func:`collect` asks one labelled case (the hand-written set) against the full history.

:func:`score_modes` compares, on the same queries, the first stage alone (the fused order, the
first five shown: today's note) with the second stage (the model's order, the relevance bar,
the calibrated confidence), in the measures of :mod:`pipeline.retrieval.ranking.quality`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import asyncpg

from db.pool import tenant_transaction
from pipeline.note.confidence import calibrated
from pipeline.retrieval.embeddings import Embedder
from pipeline.retrieval.history import ResolvedTicket, store_resolved_ticket
from pipeline.retrieval.hybrid import HybridRetrieval, RetrievalQuery
from pipeline.retrieval.ranking.features import FEATURE_NAMES, Candidate
from pipeline.retrieval.ranking.fitting import FitSettings, LabelledQuery, fit_model
from pipeline.retrieval.ranking.model import RankingModel
from pipeline.retrieval.ranking.quality import Judged, summarise
from pipeline.retrieval.ranking.ranker import diversify, rank
from pipeline.retrieval.vector_index import TicketText, store_ticket_vectors
from pipeline.text.ticket_text import extract_ips, letter_trigrams, salient_terms, tsquery_for

KB_SHOWN = 3
KB_CANDIDATES = 20


@dataclass
class EvalQuery:
    query_id: str
    tenant: str
    split: str  # train / holdout (the labelled set), before / after (a replay date)
    wording: str
    as_of: datetime
    candidates: list[Candidate]
    relevant: set[str]
    kb: list[tuple[str, float]] = field(default_factory=list)  # (article, fused score), best first
    kb_relevant: set[str] = field(default_factory=set)
    subject: str = ""  # the new ticket's subject, to print a miss

    def labelled(self) -> LabelledQuery:
        return LabelledQuery(
            group=self.query_id,
            features=[c.features for c in self.candidates],
            labels=[c.ticket_id in self.relevant for c in self.candidates],
            wording=self.wording,
            calibrate=self.wording != "history",
        )

    def kb_judged(self) -> Judged:
        return Judged(
            case_id=self.query_id,
            relevant=[a in self.kb_relevant for a, _ in self.kb],
            probabilities=[score for _, score in self.kb],
        )


def retrieval_query(
    subject: str,
    description: str,
    *,
    vector: list[float] | None,
    embedding_model: str | None,
    tags: Sequence[str],
    as_of: datetime,
) -> RetrievalQuery:
    return RetrievalQuery(
        tsquery=tsquery_for(salient_terms(subject, description)),
        vector=vector,
        model=embedding_model,
        exclude_ticket="",
        ips=tuple(extract_ips(f"{subject}\n{description}")),
        tags=tuple(tags),
        as_of=as_of,
        trigrams=letter_trigrams(f"{subject}\n{description}"),
    )


async def collect(
    conn: asyncpg.Connection, hybrid: HybridRetrieval, query: RetrievalQuery
) -> tuple[list[Candidate], list[tuple[str, float]]]:
    """One query's candidates with features and its KB articles by fused score (no bar)."""
    candidates = await hybrid.ranking_candidates(conn, query)
    articles = await hybrid.kb(conn, query, limit=KB_CANDIDATES)
    return candidates, [(a.article_id, a.score) for a in articles]


@dataclass(frozen=True)
class HistoryItem:
    ticket: ResolvedTicket
    created_at: datetime
    scenario: str


async def replay_history(
    pool: asyncpg.Pool,
    tenant: str,
    items: Sequence[HistoryItem],
    embedder: Embedder,
    *,
    relevant_of: Callable[[HistoryItem], set[str]],
    kb_of: Callable[[HistoryItem], set[str]],
    split_of: Callable[[datetime], str],
    hybrid: HybridRetrieval | None = None,
    refresh_statistics: Callable[[], Awaitable[None]] | None = None,
    statistics_every: int = 40,
    warm_up: int = 0,
    outcomes: OutcomeRecord | None = None,
) -> list[EvalQuery]:
    """Ask each ticket at its creation against what was resolved before it, store it when it
    was resolved; returns one query per ticket asked (tickets without a resolution time are
    stored first and never asked; nor is a ticket created while fewer than ``warm_up`` were
    stored: the service starts from an imported history, not an empty one).

    ``refresh_statistics`` (``ANALYZE``, as autovacuum would) runs every ``statistics_every``
    stored tickets: plans made for an empty history are slow for a full one. ``outcomes``
    collects the replayed notes' outcomes (:class:`OutcomeRecord`)."""
    hybrid = hybrid or HybridRetrieval()
    undated = [i for i in items if i.ticket.resolved_at is None]
    dated = [i for i in items if i.ticket.resolved_at is not None]
    texts = [TicketText(i.ticket.ticket_id, i.ticket.subject, i.ticket.description) for i in items]
    vectors = await embedder.embed([t.text for t in texts])
    vector_of = {t.ticket_id: v for t, v in zip(texts, vectors, strict=True)}
    events: list[tuple[datetime, int, HistoryItem]] = [(i.created_at, 0, i) for i in dated]
    events += [(i.ticket.resolved_at, 1, i) for i in dated if i.ticket.resolved_at]
    events.sort(key=lambda e: (e[0], e[1], e[2].ticket.ticket_id))
    queries: list[EvalQuery] = []
    for item in undated:
        await _store(pool, tenant, item, embedder, vector_of[item.ticket.ticket_id])
    stored = len(undated)
    record = outcomes if outcomes is not None else OutcomeRecord()
    for moment, kind, item in events:
        if kind == 1:
            record.resolve(item.ticket.ticket_id)
            await _store(pool, tenant, item, embedder, vector_of[item.ticket.ticket_id])
            stored += 1
            if refresh_statistics is not None and stored % statistics_every == 0:
                await refresh_statistics()
            continue
        if stored < warm_up:
            continue
        query = retrieval_query(
            item.ticket.subject,
            item.ticket.description,
            vector=vector_of[item.ticket.ticket_id],
            embedding_model=embedder.model,
            # a resolved ticket carries the category it was closed with, which the service
            # did not know when the ticket arrived: replayed tickets are asked without one
            tags=(),
            as_of=moment,
        )
        async with tenant_transaction(pool, tenant) as conn:
            candidates, kb = await collect(conn, hybrid, query)
        relevant = relevant_of(item) - {item.ticket.ticket_id}
        candidates = record.ask(item.ticket.ticket_id, candidates, relevant)
        queries.append(
            EvalQuery(
                query_id=f"{tenant}/{item.ticket.ticket_id}",
                tenant=tenant,
                split=split_of(moment),
                wording="history",
                subject=item.ticket.subject,
                as_of=moment,
                candidates=candidates,
                relevant=relevant,
                kb=kb,
                kb_relevant=kb_of(item),
            )
        )
    return queries


class OutcomeRecord:
    """The service's own outcome loop, replayed: each asked ticket's note is taken to show the
    first stage's first five; when that ticket is resolved they are judged (relevant or not),
    and later tickets see each precedent's record as its ``proved_right`` feature, as the live
    service counts shown precedents with a known outcome (``ranking_examples``)."""

    def __init__(self) -> None:
        self.shown: dict[str, int] = {}
        self.right: dict[str, int] = {}
        self.pending: dict[str, list[tuple[str, bool]]] = {}

    def with_record(self, candidates: list[Candidate]) -> list[Candidate]:
        position = FEATURE_NAMES.index("proved_right")
        out = []
        for c in candidates:
            shown, right = self.shown.get(c.ticket_id, 0), self.right.get(c.ticket_id, 0)
            features = list(c.features)
            features[position] = round((right - (shown - right)) / (shown + 2), 6)
            out.append(replace(c, features=tuple(features)))
        return out

    def ask(
        self, ticket_id: str, candidates: list[Candidate], relevant: set[str]
    ) -> list[Candidate]:
        out = self.with_record(candidates)
        first_five = [c.ticket_id for c in sorted(out, key=lambda c: -c.fused)[:5]]
        self.pending[ticket_id] = [(i, i in relevant) for i in first_five]
        return out

    def resolve(self, ticket_id: str) -> None:
        for candidate, was_right in self.pending.pop(ticket_id, []):
            self.shown[candidate] = self.shown.get(candidate, 0) + 1
            self.right[candidate] = self.right.get(candidate, 0) + int(was_right)


async def _store(
    pool: asyncpg.Pool, tenant: str, item: HistoryItem, embedder: Embedder, vector: list[float]
) -> None:
    text = TicketText(item.ticket.ticket_id, item.ticket.subject, item.ticket.description)
    async with tenant_transaction(pool, tenant) as conn:
        await store_resolved_ticket(conn, tenant, item.ticket, assess=False)
        await store_ticket_vectors(conn, embedder, tenant, [text], [vector])


def _first_stage(query: EvalQuery, diversity: float) -> list[bool]:
    """Today's note: the fused order, spread, the first ten (five shown)."""
    fused = [(c.ticket_id, c.fused) for c in query.candidates]
    vectors = {c.ticket_id: c.embedding for c in query.candidates if c.embedding is not None}
    picked = diversify(fused, vectors, diversity=diversity, limit=10)
    return [ticket_id in query.relevant for ticket_id, _ in picked]


def judge_modes(
    model: RankingModel, queries: Sequence[EvalQuery], *, diversity: float = 0.3
) -> dict[str, list[Judged]]:
    """The same queries under the first stage and the second, with and without the bar, and
    the KB articles with and without the KB bar: one :class:`Judged` per query and mode."""
    modes: dict[str, list[Judged]] = {
        m: [] for m in ("hybrid", "ranked_no_bar", "ranked", "kb_open", "kb_barred")
    }
    for q in queries:
        relevance = _first_stage(q, diversity)
        modes["hybrid"].append(
            Judged(q.query_id, relevance, shown=relevance[:5], wording=q.wording)
        )
        result = rank(model, q.candidates, limit=5, diversity=diversity)
        order = [c.ticket_id in q.relevant for c, _ in result.ordered]
        confidence = calibrated(model.calibration, result.record.top_probability, None)
        modes["ranked"].append(
            Judged(
                q.query_id,
                order,
                probabilities=[p for _, p in result.ordered],
                shown=[c.ticket_id in q.relevant for c, _ in result.shown],
                confidence=confidence,
                wording=q.wording,
            )
        )
        open_result = rank(model, q.candidates, limit=5, diversity=diversity, apply_bar=False)
        modes["ranked_no_bar"].append(
            Judged(
                q.query_id,
                order,
                shown=[c.ticket_id in q.relevant for c, _ in open_result.shown],
                wording=q.wording,
            )
        )
        if q.kb_relevant:
            kb = q.kb_judged()
            modes["kb_open"].append(Judged(q.query_id, kb.relevant, shown=kb.relevant[:KB_SHOWN]))
            keeps = model.kb_bar.keeps(kb.probabilities)
            kept = [ok for ok, keep in zip(kb.relevant, keeps, strict=True) if keep]
            modes["kb_barred"].append(Judged(q.query_id, kb.relevant, shown=kept[:KB_SHOWN]))
    return modes


def summarise_modes(modes: dict[str, list[Judged]]) -> dict[str, Any]:
    out: dict[str, Any] = {m: summarise(modes[m]) for m in ("hybrid", "ranked_no_bar", "ranked")}
    if modes["kb_open"]:
        out["kb"] = {
            "without_bar": _kb_summary(modes["kb_open"]),
            "with_bar": _kb_summary(modes["kb_barred"]),
        }
    return out


def score_modes(
    model: RankingModel, queries: Sequence[EvalQuery], *, diversity: float = 0.3
) -> dict[str, Any]:
    """The same queries under the first stage and the second, with and without the bar."""
    return summarise_modes(judge_modes(model, queries, diversity=diversity))


def out_of_fold(
    fixed: Sequence[EvalQuery],
    folded: Sequence[EvalQuery],
    *,
    folds: int = 5,
    settings: FitSettings = FitSettings(),
    diversity: float = 0.3,
) -> dict[str, Any]:
    """``folded`` scored by cross-validation: each fold by a model fitted (weights, bar,
    calibration, as :func:`~pipeline.retrieval.ranking.fitting.fit_model` does) on ``fixed``
    and the other folds; the folds' judgements pooled into one summary, with each fold's
    misses. What a choice made on training data is judged by, the held-out part untouched."""
    pooled: dict[str, list[Judged]] = {}
    missed: list[dict[str, Any]] = []
    for fold in range(folds):
        test = [q for i, q in enumerate(folded) if i % folds == fold]
        rest = list(fixed) + [q for i, q in enumerate(folded) if i % folds != fold]
        if not test:
            continue
        model = fit_model(
            [q.labelled() for q in rest],
            prior=None,
            settings=settings,
            kb=[q.kb_judged() for q in rest if q.kb_relevant],
        ).model
        for mode, judged in judge_modes(model, test, diversity=diversity).items():
            pooled.setdefault(mode, []).extend(judged)
        missed += misses(model, test, diversity=diversity)
    return {"queries": len(folded), **summarise_modes(pooled), "misses": missed}


def _candidate(model: RankingModel, candidate: Candidate, probability: float) -> dict[str, Any]:
    return {
        "ticket_id": candidate.ticket_id,
        "subject": candidate.subject,
        "probability": round(probability, 4),
        "contributions": model.contributions(candidate.features),
    }


def _cause(right_rank: int | None) -> str:
    """Why a note's first precedent is not right: ``not retrieved`` (no right candidate among
    the fused ones), ``out-ranked`` (the learned order put another first) or ``cut by the bar``
    (the order had a right one first, and the bar left it out: a note showing none)."""
    if right_rank is None:
        return "not retrieved"
    return "out-ranked" if right_rank > 1 else "cut by the bar"


def misses(
    model: RankingModel, queries: Sequence[EvalQuery], *, diversity: float = 0.3
) -> list[dict[str, Any]]:
    """Each query whose note would not show a right precedent first: the ticket, what ranked
    first, the best-ranked right candidate (its rank, or none when the first stage never found
    one) and each feature's contribution to both, so a miss can be read as a technician would;
    its ``cause`` (:func:`_cause`) and, when out-ranked, ``out_ranked_by``: the three features
    whose contributions favour the first over the right one most."""
    out = []
    for q in queries:
        result = rank(model, q.candidates, limit=5, diversity=diversity)
        if result.shown and result.shown[0][0].ticket_id in q.relevant:
            continue
        right = [
            (position, c, p)
            for position, (c, p) in enumerate(result.ordered, start=1)
            if c.ticket_id in q.relevant
        ]
        shown = [c.ticket_id in q.relevant for c, _ in result.shown]
        first = _candidate(model, *result.ordered[0]) if result.ordered else None
        best = _candidate(model, right[0][1], right[0][2]) if right else None
        by: list[str] = []
        if first is not None and best is not None and right[0][0] > 1:
            gaps = {n: v - best["contributions"][n] for n, v in first["contributions"].items()}
            by = [n for n, gap in sorted(gaps.items(), key=lambda kv: -kv[1])[:3] if gap > 0]
        out.append(
            {
                "query": q.query_id,
                "wording": q.wording,
                "subject": q.subject,
                "shown": shown,
                "first": first,
                "right_rank": right[0][0] if right else None,
                "right": best,
                "cause": _cause(right[0][0] if right else None),
                "out_ranked_by": by,
            }
        )
    return out


def _kb_summary(judged: Sequence[Judged]) -> dict[str, Any]:
    s = summarise(judged)
    return {
        "cases": s["cases"],
        "recall_at_3": s["recall_at_5"],
        "precision": s["precision"],
        "shown_per_note": s["shown_per_note"],
    }
