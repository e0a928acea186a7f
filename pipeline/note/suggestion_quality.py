"""Did the note point at what actually fixed the ticket? Measured when the resolution arrives.

Each enhancement keeps what its note proposed, best first (:func:`proposals`): the past
tickets and KB articles the model cited, in the order it cited them, then the other retrieved
ones in retrieval order (a context-only note proposes the similar tickets' resolutions in
order). When the resolved-ticket webhook or the history import brings the ticket's
resolution, :func:`judge` compares that text with each proposal's text (a past ticket's
resolution; a KB article's title and excerpt):

- ``suggestion_similarity``: the similarity of the first proposal at or above the threshold,
  else the best similarity seen (0-1);
- ``suggestion_rank``: that proposal's 1-based position, NULL for a miss;
- ``suggestion_hit``: whether any proposal reached :data:`HIT_THRESHOLD`.

Similarity sits behind :class:`TextSimilarity` so it can switch to embeddings (cosine of two
vectors) without touching the callers. The implementation, :class:`LexemeOverlap`, uses
the same PostgreSQL full-text machinery as retrieval: ``to_tsvector('english', ...)`` reduces
both texts to stemmed lexemes without stop words ("restarted" and "restarting" are one term),
and the score is the cosine of the two lexeme sets, ``|A ∩ B| / sqrt(|A| |B|)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import asyncpg

from db.repositories import enhancements
from pipeline.text.ticket_text import plain_text

# 0.4 sits between the scores of the same fix written for another host, user or client
# (0.64-1.0) and of a different fix for the same symptom (<= 0.32) on the demo data; re-check it
# on real resolutions and whenever the similarity changes.
HIT_THRESHOLD = 0.4
_MAX_TEXT = 4000


class TextSimilarity(Protocol):
    async def scores(
        self, conn: asyncpg.Connection, text: str, candidates: list[str]
    ) -> list[float]:
        """Similarity (0-1) of ``text`` with each candidate, in the candidates' order."""


class LexemeOverlap:
    """Cosine of the sets of English lexemes PostgreSQL's full-text parser finds."""

    async def scores(
        self, conn: asyncpg.Connection, text: str, candidates: list[str]
    ) -> list[float]:
        if not candidates:
            return []
        rows = await conn.fetch(
            """SELECT i, tsvector_to_array(to_tsvector('english', t)) AS lexemes
               FROM unnest($1::text[]) WITH ORDINALITY AS u(t, i) ORDER BY i""",
            [text[:_MAX_TEXT], *(c[:_MAX_TEXT] for c in candidates)],
        )
        target = set(rows[0]["lexemes"])
        return [_cosine(target, set(r["lexemes"])) for r in rows[1:]]


def _cosine(a: set[str], b: set[str]) -> float:
    if not a or not b:
        return 0.0
    return round(len(a & b) / math.sqrt(len(a) * len(b)), 4)


@dataclass(frozen=True)
class Verdict:
    hit: bool
    rank: int | None
    similarity: float


async def judge(
    conn: asyncpg.Connection,
    resolution: str,
    proposed: list[dict[str, Any]],
    similarity: TextSimilarity | None = None,
    threshold: float = HIT_THRESHOLD,
) -> Verdict:
    """Compare a ticket's actual resolution with what its note proposed."""
    text = plain_text(resolution)
    if not proposed or not text:
        return Verdict(hit=False, rank=None, similarity=0.0)
    scores = await (similarity or LexemeOverlap()).scores(
        conn, text, [str(p.get("text") or "") for p in proposed]
    )
    for rank, score in enumerate(scores, start=1):
        if score >= threshold:
            return Verdict(hit=True, rank=rank, similarity=score)
    return Verdict(hit=False, rank=None, similarity=max(scores, default=0.0))


async def assess_resolution(
    conn: asyncpg.Connection,
    ticket_id: str,
    resolution: str,
    similarity: TextSimilarity | None = None,
) -> Verdict | None:
    """Judge the ticket's newest enhancement against its resolution and store the verdict;
    None when this service never proposed anything for the ticket. Runs inside the caller's
    tenant transaction (the resolved webhook's or the import's), so it sees only that tenant."""
    row = await enhancements.latest_with_suggestions(conn, ticket_id)
    if row is None:
        return None
    verdict = await judge(conn, resolution, list(row["suggestions"]), similarity)
    await enhancements.record_verdict(
        conn, row["id"], hit=verdict.hit, rank=verdict.rank, similarity=verdict.similarity
    )
    return verdict
