"""The note's confidence: the probability that its first suggestion is right, calibrated on
outcomes, shown as High / Medium / Low with the percentage.

The inputs are the ranker's probability for its first candidate and, when the LLM answered,
the model's own confidence. Platt scaling maps them to a probability::

    confidence = σ(a · logit(p_first) + b · (llm_confidence − 0.5) + c)

with ``(a, b, c)`` fitted on outcomes (``RankingRecord.calibration``; the fit is
:mod:`pipeline.retrieval.ranking.fitting`). The probability is about the ranking's first
precedent, whether or not the bar let it into the note: a note that shows no precedent says so
and states a low confidence. Offline, "right" means the precedent is about the same problem
(the labelled set); live, the refit learns from suggestion hits, where it means the precedent's
fix was the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pipeline.models import RankingRecord

# Lower bounds of the levels, highest first: "High" is right four times in five or more.
LEVELS: tuple[tuple[float, str], ...] = ((0.8, "High"), (0.5, "Medium"), (0.0, "Low"))
_EPS = 1e-6


def _logit(p: float) -> float:
    q = min(max(p, _EPS), 1 - _EPS)
    return math.log(q / (1 - q))


def calibrated(
    calibration: tuple[float, float, float], first_probability: float, llm: float | None
) -> float:
    """Platt scaling of the ranker's first probability and the LLM's own confidence."""
    slope, llm_weight, intercept = calibration
    centred = (min(max(llm, 0.0), 1.0) - 0.5) if llm is not None else 0.0
    z = slope * _logit(first_probability) + llm_weight * centred + intercept
    return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))


def level(probability: float) -> str:
    return next(name for bound, name in LEVELS if probability >= bound)


@dataclass(frozen=True)
class NoteConfidence:
    probability: float  # 0-1, calibrated
    level: str
    first_ticket: str | None  # the ranking's first precedent
    first_shown: bool  # whether the relevance bar let it into the note
    llm_confidence: float | None  # the model's own number, an input only
    model: str  # which fitted model ranked and calibrated

    @property
    def percent(self) -> int:
        return round(self.probability * 100)


def note_confidence(ranking: RankingRecord | None, llm: float | None) -> NoteConfidence | None:
    """The confidence a note states; None when its context was not ranked (the similar-ticket
    source failed, or a context built by hand)."""
    if ranking is None:
        return None
    first = ranking.candidates[0] if ranking.candidates else None
    probability = calibrated(ranking.calibration, ranking.top_probability, llm)
    return NoteConfidence(
        probability=round(probability, 4),
        level=level(probability),
        first_ticket=first.ticket_id if first else None,
        first_shown=bool(first and first.shown),
        llm_confidence=llm,
        model=ranking.model,
    )
