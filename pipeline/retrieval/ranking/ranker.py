"""Rank fused candidates with a fitted model, cut them at the relevance bar, spread the rest.

Order of work: the model gives every candidate a probability of being a right precedent; the
bar keeps those at or above its absolute value and its share of the best one (so a note may
show one precedent, or none); among the kept, maximal marginal relevance (:func:`diversify`)
spreads near-duplicates of one incident apart, and the first ``limit`` are shown. The record
keeps every candidate, shown or not, with its features: the explanation and the next refit
need the ones the bar cut as much as the ones it kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from pipeline.models import RankingRecord
from pipeline.retrieval.ranking.features import Candidate
from pipeline.retrieval.ranking.model import RankingModel


def diversify(
    fused: Sequence[tuple[str, float]],
    vectors_by_id: Mapping[str, Sequence[float]],
    *,
    diversity: float,
    limit: int,
) -> list[tuple[str, float]]:
    """Maximal marginal relevance over a scored list → the first ``limit``, scores unchanged.

    Each pick maximises ``(1 - diversity) · score - diversity · max cosine to the picks so
    far``; the first pick is the best-scored item. Items without a vector (full-text only
    candidates of a ticket not yet embedded) count as unlike every other item.
    """
    if diversity <= 0 or len(fused) <= 1 or limit <= 1:
        return list(fused[: max(limit, 0)])
    ids = [item for item, _ in fused]
    dims = next((len(v) for v in vectors_by_id.values() if v), 0)
    matrix: np.ndarray = np.zeros((len(ids), max(dims, 1)), dtype=np.float32)
    for row, item in enumerate(ids):
        vector = vectors_by_id.get(item)
        if vector is not None and len(vector) == dims:
            matrix[row] = vector
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    matrix = matrix / np.where(norms == 0, 1.0, norms)
    similarity = matrix @ matrix.T
    relevance = np.array([score for _, score in fused], dtype=np.float32)
    picked = [0]
    closest = similarity[0].copy()  # each item's highest similarity to anything picked
    while len(picked) < min(limit, len(ids)):
        value = (1 - diversity) * relevance - diversity * closest
        value[picked] = -np.inf
        best = int(np.argmax(value))
        picked.append(best)
        closest = np.maximum(closest, similarity[best])
    return [fused[i] for i in picked]


@dataclass(frozen=True)
class Ranked:
    shown: list[tuple[Candidate, float]]  # (candidate, probability), in the note's order
    ordered: list[tuple[Candidate, float]]  # every candidate, by probability
    record: RankingRecord


def rank(
    model: RankingModel,
    candidates: Sequence[Candidate],
    *,
    limit: int,
    diversity: float = 0.3,
    apply_bar: bool = True,
) -> Ranked:
    """``apply_bar=False`` shows the first ``limit`` whatever their probability (evaluation)."""
    probabilities = model.probabilities(candidates)
    ordered = sorted(zip(candidates, probabilities, strict=True), key=lambda cp: -cp[1])
    keeps = model.bar.keeps([p for _, p in ordered]) if apply_bar else [True] * len(ordered)
    kept = [pair for pair, keep in zip(ordered, keeps, strict=True) if keep]
    spread = diversify(
        [(c.ticket_id, p) for c, p in kept],
        {c.ticket_id: c.embedding for c, _ in kept if c.embedding is not None},
        diversity=diversity,
        limit=limit,
    )
    by_id = {c.ticket_id: (c, p) for c, p in kept}
    shown = [by_id[ticket_id] for ticket_id, _ in spread]
    record = model.record(candidates, probabilities, {c.ticket_id for c, _ in shown})
    return Ranked(shown=shown, ordered=ordered, record=record)
