"""What the second stage knows about each fused candidate: the features a technician would use
to judge a past ticket, each a number near 0..1 so a weight reads as its contribution.

========================  ===============================================================
``fused``                 the first stage's fused score ``(1·full-text + 5·cosine) / 6``
``relative``              fused score ÷ the best candidate's (1 for the best)
``fulltext``              ``ts_rank_cd`` of the ticket's terms against the candidate
``vector``                cosine of the two tickets' embeddings
``subject``               share of the ticket's terms found in the candidate's subject
``description``           … in its description
``resolution``            … in its resolution
``shared_ip``             1 when an address of the ticket appears in the candidate
``same_category``         1 when SDP's category, subcategory or item (or a tag) is shared
``recency``               ``exp(−age / 180 days)`` of the candidate's resolution
``real_fix``              0 when the resolution records no fix ("closed, no response")
``proved_right``          ``(right − wrong) / (shown + 2)`` over its earlier notes with a
                          known outcome: 0 without history, towards ±1 with it
``vector_vs_best``        ``vector`` ÷ the highest ``vector`` among the query's candidates
``fulltext_vs_best``      … ``fulltext`` …
``subject_vs_best``       … ``subject`` …
``description_vs_best``   … ``description`` …
``resolution_vs_best``    … ``resolution`` …
``spelling``              character-trigram overlap (Dice) of the ticket's subject and
                          description with the candidate's, as written
``spelling_vs_best``      … ``spelling`` …
========================  ===============================================================

The ``…_vs_best`` features compare a candidate with the others found for the same ticket, as a
technician reading the list does: a cosine of 0.6 is a strong match when nothing else reaches
0.5 and a weak one next to a 0.9. They are derived from the other features
(:func:`with_relative`), so a stored example is re-derived the same way when a refit reads it.

``spelling`` reads the words the way a technician does when a user misspells or borrows them:
"disconecting" and "disconnecting", "Netzwerk" and "network" share most of their letter
triples, while full-text search (whole stemmed words) and the offline embedding (a vector per
known word) see nothing in common.

Both scores are computed for every candidate, also for one only the other source proposed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import numpy as np

from pipeline.text.ticket_text import letter_trigrams

FEATURE_NAMES: tuple[str, ...] = (
    "fused",
    "relative",
    "fulltext",
    "vector",
    "subject",
    "description",
    "resolution",
    "shared_ip",
    "same_category",
    "recency",
    "real_fix",
    "proved_right",
    "vector_vs_best",
    "fulltext_vs_best",
    "subject_vs_best",
    "description_vs_best",
    "resolution_vs_best",
    "spelling",
    "spelling_vs_best",
)
RELATIVE_TO: tuple[tuple[str, str], ...] = (
    ("vector_vs_best", "vector"),
    ("fulltext_vs_best", "fulltext"),
    ("subject_vs_best", "subject"),
    ("description_vs_best", "description"),
    ("resolution_vs_best", "resolution"),
    ("spelling_vs_best", "spelling"),
)
RECENCY_DAYS = 180.0
_NO_FIX = re.compile(
    r"\b(no (response|reply|answer|feedback)|duplicate|(could|can)( ?not|n't) (be )?reproduce"
    r"|not reproducible|works (again|now)|resolved itself|went away|closed at the "
    r"(requester|user)'?s? ?(request)?|cancell?ed|withdrawn|no action|wrong queue|auto-?closed)\b",
    re.IGNORECASE,
)
_SHORT_NO_FIX_WORDS = 20  # a longer text that mentions such words usually says what was done


def resolution_is_fix(text: str) -> float:
    """1 when the resolution says what fixed the problem, 0 when it records none: too short to
    say anything, or a short closing remark ("duplicate", "no response", "works again")."""
    words = len(text.split())
    if words < 3:
        return 0.0
    return 0.0 if words <= _SHORT_NO_FIX_WORDS and _NO_FIX.search(text) else 1.0


@dataclass(frozen=True)
class Candidate:
    """One fused candidate with its features (in ``FEATURE_NAMES`` order)."""

    ticket_id: str
    subject: str
    resolution: str
    resolved_at: datetime | None
    fused: float
    features: tuple[float, ...]
    embedding: tuple[float, ...] | None = None

    def feature(self, name: str) -> float:
        return self.features[FEATURE_NAMES.index(name)]


def _cosine(a: Sequence[float] | None, b: Sequence[float] | None) -> float:
    if a is None or b is None or len(a) != len(b) or not len(a):
        return 0.0
    va, vb = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norm = float(np.linalg.norm(va) * np.linalg.norm(vb))
    return float(va @ vb / norm) if norm else 0.0


def spelling_overlap(a: frozenset[str], b: frozenset[str]) -> float:
    """Dice coefficient of two trigram sets: 1 for the same letters, 0 for none shared."""
    return 2 * len(a & b) / (len(a) + len(b)) if a and b else 0.0


def _share(hits: Any, total: int) -> float:
    return min(1.0, int(hits or 0) / total) if total else 0.0


def with_relative(rows: Sequence[Sequence[float]]) -> list[tuple[float, ...]]:
    """One query's candidate feature rows (``FEATURE_NAMES`` order) with the ``…_vs_best``
    columns (re)computed from their base columns: value ÷ the query's highest (0 when that is
    0)."""
    if not rows:
        return []
    matrix = np.asarray(rows, dtype=np.float64).reshape(len(rows), -1)
    for name, base in RELATIVE_TO:
        column = matrix[:, FEATURE_NAMES.index(base)]
        best = float(column.max())
        matrix[:, FEATURE_NAMES.index(name)] = column / best if best > 0 else 0.0
    return [tuple(round(float(v), 6) for v in row) for row in matrix]


def build_candidates(
    fused: Sequence[tuple[str, float]],
    details: Mapping[str, Mapping[str, Any]],
    *,
    query_vector: Sequence[float] | None,
    as_of: datetime,
    query_trigrams: frozenset[str] = frozenset(),
) -> list[Candidate]:
    """Features for each fused (id, score), in the fused order; ids without details (deleted
    since the search) are left out. ``query_trigrams``: the ticket's subject and description
    as :func:`~pipeline.text.ticket_text.letter_trigrams`."""
    best = max((score for _, score in fused), default=0.0) or 1.0
    out: list[Candidate] = []
    relative_columns = (0.0,) * len(RELATIVE_TO)  # filled in by with_relative below
    for ticket_id, score in fused:
        row = details.get(ticket_id)
        if row is None:
            continue
        terms = int(row["query_terms"] or 0)
        resolved_at = row["resolved_at"]
        age_days = max(0.0, (as_of - resolved_at).total_seconds() / 86400) if resolved_at else None
        shown, right = int(row["shown_before"] or 0), int(row["right_before"] or 0)
        embedding = tuple(float(v) for v in row["embedding"]) if row["embedding"] else None
        values = (
            float(score),
            float(score) / best,
            min(1.0, float(row["fulltext"] or 0.0)),
            max(0.0, _cosine(query_vector, embedding)),
            _share(row["subject_hits"], terms),
            _share(row["description_hits"], terms),
            _share(row["resolution_hits"], terms),
            1.0 if row["shared_ip"] else 0.0,
            1.0 if row["same_category"] else 0.0,
            math.exp(-age_days / RECENCY_DAYS) if age_days is not None else 0.0,
            resolution_is_fix(str(row["resolution"] or "")),
            (right - (shown - right)) / (shown + 2),
            *relative_columns[:-1],
            spelling_overlap(
                query_trigrams,
                letter_trigrams(f"{row['subject']} {row.get('description') or ''}"),
            ),
            relative_columns[-1],
        )
        out.append(
            Candidate(
                ticket_id=ticket_id,
                subject=str(row["subject"] or ""),
                resolution=str(row["resolution"] or ""),
                resolved_at=resolved_at,
                fused=float(score),
                features=tuple(round(v, 6) for v in values),
                embedding=embedding,
            )
        )
    rows = with_relative([c.features for c in out])
    return [replace(c, features=row) for c, row in zip(out, rows, strict=True)]
