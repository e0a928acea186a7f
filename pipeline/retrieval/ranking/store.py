"""Where the learned ranking lives and how it learns: which model ranks a tenant's tickets, the
examples each note leaves behind, and their labels once the ticket's resolution arrives.

**Which model.** A tenant's own newest model when it has one, else the deployment's newest,
else the shipped default (:func:`~pipeline.retrieval.ranking.model.default_model`); read
through a short cache (``ttl_s``) so a refit applies within a minute without a query per
ticket. A stored model that cannot be read (hand-edited, from a newer version) is skipped with a
warning and the next one down is used: a bad row costs that tenant its learned weights, never
its notes.

**Examples.** At completion every ranked candidate of the note is kept with its features, its
rank, whether the note showed it and the confidence the note stated (``record_outcome_inputs``).

**Labels.** When the ticket's resolution arrives, each candidate's own resolution is compared
with it by the suggestion-hit similarity; at or above its threshold the candidate was right
(``label_examples``), and whether the ranking's first candidate was right is the outcome of the
note's confidence.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from db.pool import tenant_transaction
from db.repositories import ranking
from pipeline.models import RankingRecord
from pipeline.note.confidence import NoteConfidence
from pipeline.note.suggestion_quality import HIT_THRESHOLD, LexemeOverlap, TextSimilarity
from pipeline.retrieval.ranking.model import ModelError, RankingModel, default_model
from pipeline.tenancy.ttl_cache import TtlCache
from pipeline.text.ticket_text import plain_text

log = logging.getLogger(__name__)
DEPLOYMENT = "*deployment*"  # the cache key of the deployment's model (not a tenant id)


class RankingModels:
    def __init__(self, pool: asyncpg.Pool, *, ttl_s: float = 60.0) -> None:
        self._pool = pool
        self._cache: TtlCache[str, RankingModel | None] = TtlCache(self._load, ttl_s=ttl_s)

    async def for_tenant(self, tenant_id: str) -> RankingModel:
        try:
            own = await self._cache.get(tenant_id)
            if own is not None:
                return own
            deployment = await self._cache.get(DEPLOYMENT)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning(
                "ranking model not read (%s): the default model ranks",
                type(exc).__name__,
                extra={"tenant_id": tenant_id},
            )
            return default_model()
        return deployment or default_model()

    async def _load(self, key: str) -> RankingModel | None:
        if key == DEPLOYMENT:
            row = await ranking.deployment_model(self._pool)
            scope = "deployment"
        else:
            async with tenant_transaction(self._pool, key) as conn:
                row = await ranking.tenant_model(conn)
            scope = "tenant"
        if row is None:
            return None
        try:
            return RankingModel.from_json(
                row["model"], scope=scope, model_id=row["id"], report=row["report"]
            )
        except ModelError as exc:
            log.warning("ranking model #%s skipped: %s", row["id"], exc)
            return None


async def record_outcome_inputs(
    conn: asyncpg.Connection,
    tenant_id: str,
    enhancement_id: uuid.UUID,
    record: RankingRecord | None,
    confidence: NoteConfidence | None,
) -> None:
    """The note's ranked candidates and stated confidence, inside the completion transaction."""
    if record is None:
        return
    await ranking.record_examples(
        conn,
        tenant_id,
        enhancement_id,
        record.feature_names,
        [(c.ticket_id, c.rank, c.shown, c.probability, c.features) for c in record.candidates],
    )
    if confidence is not None:
        await ranking.store_confidence(
            conn,
            enhancement_id,
            confidence=confidence.probability,
            inputs={
                "first_probability": record.top_probability,
                "llm_confidence": confidence.llm_confidence,
                "model": record.model,
                "level": confidence.level,
            },
        )


async def label_examples(
    conn: asyncpg.Connection,
    enhancement_id: uuid.UUID,
    resolution: str,
    similarity: TextSimilarity | None = None,
    threshold: float = HIT_THRESHOLD,
) -> dict[str, Any] | None:
    """Label an enhancement's candidates against the ticket's actual resolution; None when it
    kept none. Runs inside the caller's tenant transaction."""
    rows = await ranking.examples_to_label(conn, enhancement_id)
    text = plain_text(resolution)
    if not rows or not text:
        return None
    scores = await (similarity or LexemeOverlap()).scores(
        conn, text, [plain_text(r["resolution"]) for r in rows]
    )
    labels = [
        (r["candidate_id"], bool(r["resolution"]) and score >= threshold, score)
        for r, score in zip(rows, scores, strict=True)
    ]
    first_right = bool(labels[0][1]) if rows[0]["rank"] == 1 else False
    await ranking.store_labels(conn, enhancement_id, labels, first_was_right=first_right)
    return {"labelled": len(labels), "right": sum(ok for _, ok, _ in labels), "first": first_right}
