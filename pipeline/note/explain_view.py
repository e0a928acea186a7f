"""What `ai-agents explain` and ``GET /api/v1/enhancements/{id}/explain`` show: everything the
"low enhancement quality" investigation needs about one enhancement, in one document.

From the enhancement row: outcome, error, attempts, stage timings, tokens, cost, trace id and
the suggestion verdict. From the stored explain record (kept
``AI_AGENTS_EXPLAIN_RETENTION_DAYS``): the retrieval candidates of each source with their
scores and why each was kept, the prompt exactly as the LLM received it (already redacted
when the tenant has ``redact_pii``) and the model's raw answer. ``fallbacks`` spells out every
way the enhancement departed from the normal path.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from db.pool import system_fetch, tenant_transaction
from db.repositories.enhancement_insight import get_explain


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
    llm: dict[str, Any] | None = None
    prompt: list[dict[str, str]] | None = Field(
        None, description="the messages as sent to the LLM (redacted as it saw them)"
    )
    raw_answer: str | None = Field(None, description="the model's answer as received")


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
        llm=explain.get("llm"),
        prompt=explain.get("prompt"),
        raw_answer=explain.get("raw_answer"),
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
