"""How good a ranking, a bar and a confidence are, measured on labelled queries; and the bar
chosen from such data.

One :class:`Judged` per query (a labelled case, a replayed ticket, an enhancement whose
resolution arrived): whether each ranked candidate is relevant, its probability, what the note
showed and the confidence it stated. :func:`summarise` gives

- ``recall_at_1``: the note's first precedent is relevant (a note showing none misses);
- ``recall_at_5``: a relevant precedent is among those shown (at most five);
- ``mrr``: mean 1 / rank of the first relevant candidate in the ranked order (first ten);
- ``precision``: relevant shown precedents ÷ all shown precedents;
- ``noise_per_note``: irrelevant precedents shown per note;
- the reliability table (stated confidence against how often the first candidate was right,
  per tenth) and the expected calibration error, ``Σ nᵦ/N · |mean confidenceᵦ − observedᵦ|``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipeline.retrieval.ranking.model import RelevanceBar

DEPTH = 10
SHOWN = 5
BINS = 10


@dataclass
class Judged:
    case_id: str
    relevant: list[bool]  # per candidate, in the ranked order
    probabilities: list[float] = field(default_factory=list)  # same order (empty: unranked)
    shown: list[bool] | None = None  # relevance of what the note showed, in its order
    confidence: float | None = None
    wording: str = ""

    @property
    def first_right(self) -> bool:
        return bool(self.relevant and self.relevant[0])


def reliability(pairs: Sequence[tuple[float, bool]], bins: int = BINS) -> list[dict[str, Any]]:
    """Per bin of stated probability: notes, mean stated, observed share that came true."""
    table = []
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        inside = [(p, ok) for p, ok in pairs if low <= p < high or (b == bins - 1 and p == 1.0)]
        if inside:
            table.append(
                {
                    "bin": f"{low:.1f}-{high:.1f}",
                    "notes": len(inside),
                    "stated": round(sum(p for p, _ in inside) / len(inside), 4),
                    "observed": round(sum(ok for _, ok in inside) / len(inside), 4),
                }
            )
    return table


def expected_calibration_error(pairs: Sequence[tuple[float, bool]], bins: int = BINS) -> float:
    total = len(pairs)
    if not total:
        return 0.0
    return round(
        sum(
            row["notes"] / total * abs(row["stated"] - row["observed"])
            for row in reliability(pairs, bins)
        ),
        4,
    )


def summarise(judged: Sequence[Judged]) -> dict[str, Any]:
    n = len(judged) or 1
    shown_lists = [j.shown if j.shown is not None else j.relevant[:SHOWN] for j in judged]
    shown = sum(len(s) for s in shown_lists)
    right_shown = sum(sum(s) for s in shown_lists)
    mrr = 0.0
    for j in judged:
        ranks = [i for i, ok in enumerate(j.relevant[:DEPTH], start=1) if ok]
        mrr += 1 / ranks[0] if ranks else 0.0
    pairs = [(j.confidence, j.first_right) for j in judged if j.confidence is not None]
    out: dict[str, Any] = {
        "cases": len(judged),
        "recall_at_1": round(sum(bool(s and s[0]) for s in shown_lists) / n, 4),
        "recall_at_5": round(sum(any(s[:SHOWN]) for s in shown_lists) / n, 4),
        "mrr": round(mrr / n, 4),
        "precision": round(right_shown / shown, 4) if shown else None,
        "noise_per_note": round((shown - right_shown) / n, 3),
        "shown_per_note": round(shown / n, 3),
        "notes_without_precedent": sum(not s for s in shown_lists),
        "not_first": [
            j.case_id for j, s in zip(judged, shown_lists, strict=True) if not (s and s[0])
        ],
    }
    if pairs:
        out["ece"] = expected_calibration_error(pairs)
        out["mean_confidence"] = round(sum(p for p, _ in pairs) / len(pairs), 4)
        out["first_right"] = round(sum(ok for _, ok in pairs) / len(pairs), 4)
        out["reliability"] = reliability(pairs)
    return out


def shown_by_bar(j: Judged, bar: RelevanceBar, limit: int = SHOWN) -> list[bool]:
    """What a note would show under ``bar`` (the ranked order, without the spread)."""
    keeps = bar.keeps(j.probabilities)
    return [ok for ok, keep in zip(j.relevant, keeps, strict=True) if keep][:limit]


ABSOLUTES = tuple(round(0.01 * i, 2) for i in range(91))  # the bars tried: 0-0.9
RELATIVES = tuple(round(0.05 * i, 2) for i in range(20))  # 0-0.95 of the best


@dataclass(frozen=True)
class BarChoice:
    bar: RelevanceBar
    precision: float | None
    recall_at_5: float
    recall_at_5_without_bar: float
    shown_per_note: float


def choose_bar(
    judged: Sequence[Judged],
    *,
    limit: int = SHOWN,
    max_recall_loss: float = 0.0,
    absolutes: Sequence[float] = ABSOLUTES,
    relatives: Sequence[float] = RELATIVES,
) -> BarChoice:
    """The bar with the highest precision of shown items among those that keep recall@5 within
    ``max_recall_loss`` of showing the first ``limit`` unconditionally; ties go to the bar that
    shows fewer items, then to the lower bar. ``judged`` carry probabilities (or scores), best
    first, so a bar keeps a prefix of each list."""
    usable = [j for j in judged if j.probabilities]
    open_bar = RelevanceBar(0.0, 0.0)
    if not usable:  # nothing judged: show everything
        return BarChoice(open_bar, None, 0.0, 0.0, 0.0)
    n = len(usable)
    depth = max(len(j.probabilities) for j in usable)
    probs = np.full((n, depth), -1.0)
    right = np.zeros((n, depth + 1))  # right[i, k]: relevant among the first k
    for i, j in enumerate(usable):
        probs[i, : len(j.probabilities)] = j.probabilities
        right[i, 1 : len(j.relevant) + 1] = np.cumsum(j.relevant)
        right[i, len(j.relevant) + 1 :] = right[i, len(j.relevant)]
    rows = np.arange(n)
    first = probs[:, 0]
    baseline = float((right[rows, np.minimum(limit, depth)] > 0).mean())
    best: tuple[tuple[float, float, float, float], BarChoice] | None = None
    for absolute in absolutes:
        for relative in relatives:
            threshold = np.maximum(absolute, relative * first)
            kept = np.minimum((probs >= threshold[:, None]).sum(axis=1), limit)
            found = right[rows, kept]
            recall = float((found > 0).mean())
            if recall < baseline - max_recall_loss - 1e-9:
                continue
            shown = float(kept.sum())
            precision = float(found.sum()) / shown if shown else 0.0
            key = (precision, -shown / n, -absolute, -relative)
            if best is None or key > best[0]:
                best = (
                    key,
                    BarChoice(
                        RelevanceBar(absolute, relative),
                        round(precision, 4),
                        round(recall, 4),
                        round(baseline, 4),
                        round(shown / n, 3),
                    ),
                )
    assert best is not None  # the open bar always qualifies
    return best[1]
