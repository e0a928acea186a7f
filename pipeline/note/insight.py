"""What a note proposed and how it was made: stored at completion, shown on request.

At completion the Enhancer stores two things with the enhancement, because none of it can be
rebuilt later (the history, the KB and the model change, and the prompt was redacted with the
tenant's settings of the day): ``proposals`` (what the note proposed, best first: the suggestion
verdict judges them when the resolution arrives) and ``explain_record`` (what retrieval found
and why each item was kept, what the LLM was sent — already redacted — and what it answered;
cleared after ``AI_AGENTS_EXPLAIN_RETENTION_DAYS``).

``load_explanation`` is what `ai-agents explain` and ``GET /api/v1/enhancements/{id}/explain``
show: the enhancement row (outcome, error, attempts, stage timings, tokens, cost, trace id, the
suggestion verdict), the stored record, and ``fallbacks``: every way the enhancement departed
from the normal path.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from db.pool import system_fetch, tenant_transaction
from db.repositories.enhancements import get_explain
from pipeline.models import RankingRecord, SimilarTicket, SynthesisResult, TicketContext
from pipeline.note.citations import normalise_citation
from pipeline.text.ticket_text import plain_text


def _cited(synthesis: SynthesisResult | None) -> dict[str, list[str]]:
    """citation id -> where the model used it (likely causes, next steps, related)."""
    where: dict[str, list[str]] = {}
    enhancement = synthesis.enhancement if synthesis and synthesis.mode == "llm" else None
    if enhancement is None:
        return where
    groups = {"likely causes": enhancement.likely_causes, "next steps": enhancement.next_steps}
    for name, statements in groups.items():
        for statement in statements:
            for raw in statement.sources:
                places = where.setdefault(normalise_citation(raw), [])
                if name not in places:
                    places.append(name)
    for raw in (
        enhancement.related_tickets + enhancement.related_articles + enhancement.related_assets
    ):
        places = where.setdefault(normalise_citation(raw), [])
        if "related" not in places:
            places.append("related")
    return where


def _why(rank: int, total: int, score: float, used: list[str] | None) -> str:
    found = f"fused rank {rank} of {total} kept (score {score:.3f})"
    return (
        f"{found}; cited by the model in {', '.join(used)}"
        if used
        else f"{found}; not cited by the model"
    )


def _ticket_why(
    ticket: SimilarTicket, ranking: RankingRecord | None, used: list[str] | None
) -> str:
    ranked = {c.ticket_id: c for c in ranking.candidates} if ranking else {}
    candidate = ranked.get(ticket.ticket_id)
    if candidate is None or ranking is None:
        return _why(1, 1, ticket.score, used)
    found = (
        f"ranked {candidate.rank} of {len(ranking.candidates)} by the learned model "
        f"({candidate.probability:.0%}, fused score {ticket.score:.3f}), past the relevance bar"
    )
    return (
        f"{found}; cited by the model in {', '.join(used)}"
        if used
        else (f"{found}; not cited by the model")
    )


EXPLAINED_CANDIDATES = 10  # ranked candidates whose feature contributions explain keeps


def _ranking(ranking: RankingRecord | None) -> dict[str, Any] | None:
    """The second stage as explain shows it: the model, its bar and calibration, and for the
    first candidates each feature's contribution to the logit (weight × value)."""
    if ranking is None:
        return None
    weights = dict(zip(ranking.feature_names, ranking.weights, strict=False))
    return {
        "model": ranking.model,
        "bar": {"absolute": ranking.bar_absolute, "relative": ranking.bar_relative},
        "calibration": list(ranking.calibration),
        "intercept": ranking.intercept,
        "feature_names": list(ranking.feature_names),
        "candidates": len(ranking.candidates),
        "ranked": [
            {
                "rank": c.rank,
                "ticket_id": c.ticket_id,
                "probability": c.probability,
                "shown": c.shown,
                "contributions": {
                    name: round(weights.get(name, 0.0) * value, 4)
                    for name, value in zip(ranking.feature_names, c.features, strict=False)
                },
                "values": dict(zip(ranking.feature_names, c.features, strict=False)),
            }
            for c in ranking.candidates[:EXPLAINED_CANDIDATES]
        ],
    }


def explain_record(
    context: TicketContext, synthesis: SynthesisResult | None, *, outcome: str
) -> dict[str, Any]:
    cited = _cited(synthesis)
    tickets = context.similar_tickets
    articles = context.kb_articles
    candidates = {
        "similar_tickets": [
            {
                "rank": i,
                "ticket_id": t.ticket_id,
                "subject": t.subject,
                "score": t.score,
                "relevance": t.relevance,
                "cited_in": cited.get(t.citation, []),
                "why": _ticket_why(t, context.ranking, cited.get(t.citation)),
            }
            for i, t in enumerate(tickets, start=1)
        ],
        "kb_articles": [
            {
                "rank": i,
                "article_id": a.article_id,
                "title": a.title,
                "score": a.score,
                "cited_in": cited.get(a.citation, []),
                "why": _why(i, len(articles), a.score, cited.get(a.citation)),
            }
            for i, a in enumerate(articles, start=1)
        ],
        "ip_assets": [
            {
                "ip": m.ip,
                "match": m.match,
                "network": m.network,
                "hostname": m.hostname,
                "cited_in": cited.get(m.citation, []),
                "why": f"{'host' if m.match == 'host' else 'subnet'} entry {m.network} contains "
                f"{m.ip}, an address in the ticket",
            }
            for m in context.assets
        ],
        "unmatched_ips": list(context.unmatched_ips),
    }
    llm: dict[str, Any] = {
        "mode": None,
        "model": None,
        "models_tried": [],
        "attempts": 0,
        "reason": None,
    }
    if synthesis is not None:
        llm = {
            "mode": synthesis.mode,
            "model": synthesis.model,
            "models_tried": list(synthesis.models_tried),
            "attempts": synthesis.llm_attempts,
            "reason": synthesis.reason,
            # counts by kind only: the values never leave the redactor
            "redactions": dict(synthesis.redactions),
            # every answered attempt, as the usage ledger has it
            "usage": [u.model_dump() for u in synthesis.usage],
        }
    return _without_nul(
        {
            "recorded_at": datetime.now(UTC).isoformat(),
            "outcome": outcome,
            "candidates": candidates,
            "ranking": _ranking(context.ranking),
            "sources": [s.model_dump() for s in context.sources],
            "llm": llm,
            "prompt": synthesis.prompt_messages if synthesis else None,
            "raw_answer": synthesis.raw_answer if synthesis else None,
        }
    )


def _without_nul(value: Any) -> Any:
    """PostgreSQL's jsonb refuses U+0000, which a model's raw answer may contain."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, dict):
        return {k: _without_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    return value


def proposals(context: TicketContext, synthesis: SynthesisResult | None) -> list[dict[str, Any]]:
    """What the note proposed, best first; stored with the enhancement at completion."""
    tickets = {t.citation: t for t in context.similar_tickets}
    articles = {a.citation: a for a in context.kb_articles}
    cited: list[str] = []
    enhancement = synthesis.enhancement if synthesis and synthesis.mode == "llm" else None
    if enhancement is not None:
        ids = [
            s for st in [*enhancement.likely_causes, *enhancement.next_steps] for s in st.sources
        ]
        ids += enhancement.related_tickets + enhancement.related_articles
        for raw in ids:
            cid = normalise_citation(raw)
            if (cid in tickets or cid in articles) and cid not in cited:
                cited.append(cid)
    order = cited + [c for c in [*tickets, *articles] if c not in cited]
    out: list[dict[str, Any]] = []
    for cid in order:
        if cid in tickets:
            t = tickets[cid]
            out.append(
                {
                    "citation": cid,
                    "kind": "ticket",
                    "id": t.ticket_id,
                    "title": plain_text(t.subject),
                    "text": plain_text(t.resolution),
                    "score": t.score,
                    "cited": cid in cited,
                }
            )
        else:
            a = articles[cid]
            out.append(
                {
                    "citation": cid,
                    "kind": "kb",
                    "id": a.article_id,
                    "title": plain_text(a.title),
                    "text": f"{plain_text(a.title)}. {plain_text(a.excerpt)}",
                    "score": a.score,
                    "cited": cid in cited,
                }
            )
    return out


class Explanation(BaseModel):
    id: uuid.UUID
    ticket_id: str
    status: str
    outcome: str | None = None
    error: str | None = Field(None, description="failure, or why the note is context-only")
    attempts: int
    max_attempts: int
    received_at: datetime
    finished_at: datetime | None = None
    stage_timings: dict[str, float] = Field(default_factory=dict, description="seconds")
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: float | None = None
    trace_id: str | None = None
    note_id: str | None = None
    supersedes: uuid.UUID | None = None
    fallbacks: list[str] = Field(
        default_factory=list, description="every departure from the normal path"
    )
    suggestion_hit: bool | None = None
    suggestion_rank: int | None = None
    suggestion_similarity: float | None = None
    confidence: float | None = Field(
        None,
        description="what the note stated: the calibrated probability its first precedent is right",
    )
    confidence_inputs: dict[str, Any] | None = Field(
        None, description="the first candidate's probability, the LLM's own number, the model"
    )
    confidence_outcome: bool | None = Field(
        None, description="whether the first precedent's fix was the fix (once resolved)"
    )
    proposals: list[dict[str, Any]] = Field(
        default_factory=list, description="what the note proposed, best first"
    )
    context_sources: list[dict[str, Any]] = Field(default_factory=list)
    explain_available: bool
    explain_missing_reason: str | None = None
    recorded_at: str | None = None
    candidates: dict[str, Any] | None = Field(
        None, description="per source: items with score, rank and why they were kept"
    )
    ranking: dict[str, Any] | None = Field(
        None,
        description="the learned ranking: model, relevance bar, calibration, and each feature's "
        "contribution for the first candidates",
    )
    llm: dict[str, Any] | None = None
    prompt: list[dict[str, str]] | None = Field(
        None, description="the messages as sent to the LLM (redacted as it saw them)"
    )
    raw_answer: str | None = Field(None, description="the model's answer as received")
    redactions: dict[str, int] = Field(
        default_factory=dict,
        description="placeholders put into the prompt, by kind (never the values)",
    )


def _fallbacks(row: asyncpg.Record, explain: dict[str, Any] | None) -> list[str]:
    out: list[str] = []
    for source in row["context_sources"] or []:
        if source.get("status") in ("timeout", "error"):
            out.append(
                f"context source {source['name']} {source['status']}"
                + (f": {source['error']}" if source.get("error") else "")
            )
    if row["outcome"] == "context_only":
        out.append(f"context-only note (no LLM analysis): {row['error'] or 'no reason recorded'}")
    elif row["outcome"] == "skipped":
        out.append(f"skipped, no note: {row['error'] or 'no reason recorded'}")
    llm = (explain or {}).get("llm") or {}
    tried = llm.get("models_tried") or []
    if len(set(tried)) > 1:
        out.append(f"model fallback: tried {', '.join(tried)}; answered by {llm.get('model')}")
    if (llm.get("attempts") or 0) > 1:
        out.append(f"LLM answered after {llm['attempts']} attempts")
    if row["attempts"] > 1:
        out.append(f"job ran {row['attempts']} times (retries or a crashed replica)")
    if row["status"] == "failed":
        out.append(f"failed: {row['error']}")
    return out


def build_explanation(row: asyncpg.Record, *, retention_days: float) -> Explanation:
    explain = row["explain"]
    missing = None
    if explain is None:
        if row["status"] in ("queued", "running"):
            missing = "the enhancement has not finished yet"
        elif row["status"] == "failed":
            missing = "failed enhancements keep no prompt or answer; see error and the trace"
        else:
            missing = (
                f"the prompt and answer are kept {retention_days:g} days "
                "(AI_AGENTS_EXPLAIN_RETENTION_DAYS) and this one is older, or it was "
                "written before explain records existed"
            )
    explain = explain or {}
    return Explanation(
        **{
            k: row[k]
            for k in (
                "id",
                "ticket_id",
                "status",
                "outcome",
                "error",
                "attempts",
                "max_attempts",
                "received_at",
                "finished_at",
                "model",
                "prompt_tokens",
                "completion_tokens",
                "trace_id",
                "note_id",
                "supersedes",
                "suggestion_hit",
                "suggestion_rank",
                "suggestion_similarity",
                "confidence",
                "confidence_inputs",
                "confidence_outcome",
            )
        },
        stage_timings=row["stage_timings"] or {},
        cost_usd=float(row["cost_usd"]) if row["cost_usd"] is not None else None,
        fallbacks=_fallbacks(row, explain or None),
        proposals=[{k: v for k, v in p.items() if k != "text"} for p in row["suggestions"] or []],
        context_sources=row["context_sources"] or [],
        explain_available=bool(explain),
        explain_missing_reason=missing,
        recorded_at=explain.get("recorded_at"),
        candidates=explain.get("candidates"),
        ranking=explain.get("ranking"),
        llm=explain.get("llm"),
        prompt=explain.get("prompt"),
        raw_answer=explain.get("raw_answer"),
        redactions=(explain.get("llm") or {}).get("redactions") or {},
    )


async def load_explanation(
    pool: asyncpg.Pool, enhancement_id: uuid.UUID, *, tenant_id: str | None, retention_days: float
) -> Explanation | None:
    """``tenant_id`` None (the operator's CLI): look the tenant up first, then read inside it."""
    if tenant_id is None:
        rows = await system_fetch(
            pool, "SELECT app_tenant_for_enhancement($1) AS tenant_id", enhancement_id
        )
        tenant_id = rows[0]["tenant_id"] if rows else None
        if tenant_id is None:
            return None
    async with tenant_transaction(pool, tenant_id) as conn:
        row = await get_explain(conn, enhancement_id)
    return build_explanation(row, retention_days=retention_days) if row else None
