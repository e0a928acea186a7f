"""The record `ai-agents explain` shows: what retrieval found and why each item was kept,
what the LLM was sent (already redacted, exactly as it left) and what it answered.

Built once at completion and stored on the enhancement (cleared after
``AI_AGENTS_EXPLAIN_RETENTION_DAYS``), because none of it can be rebuilt later: the history,
the KB and the model change, and the prompt was redacted with the tenant's settings of the day.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.models import SynthesisResult, TicketContext
from pipeline.note.citations import normalise_citation


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
    found = f"full-text rank {rank} of {total} kept (score {score:.3f})"
    return (
        f"{found}; cited by the model in {', '.join(used)}"
        if used
        else f"{found}; not cited by the model"
    )


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
                "cited_in": cited.get(t.citation, []),
                "why": _why(i, len(tickets), t.score, cited.get(t.citation)),
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
        }
    return _without_nul(
        {
            "recorded_at": datetime.now(UTC).isoformat(),
            "outcome": outcome,
            "candidates": candidates,
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
