"""A fitted second-stage model: one weight per feature, the relevance bars, the confidence's
calibration; what it is as JSON (stored in ``ranking_models``, shipped as the default).

A stored model is untrusted input like any other row: :meth:`RankingModel.from_json` refuses
non-finite or out-of-range numbers, and maps weights by feature name, so a model fitted before a
feature existed ranks with that feature's weight at 0 instead of failing.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.models import RankedCandidate, RankingRecord
from pipeline.retrieval.ranking.features import FEATURE_NAMES, Candidate
from pipeline.retrieval.ranking.logistic import sigmoid

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_model.json")
MAX_WEIGHT = 100.0


class ModelError(ValueError):
    """A model document that cannot be used; the message says which field."""


@dataclass(frozen=True)
class RelevanceBar:
    """Show an item only when its score reaches ``absolute`` and ``relative`` × the best one's."""

    absolute: float
    relative: float

    def keeps(self, scores: Sequence[float]) -> list[bool]:
        best = max(scores, default=0.0)
        return [s >= self.absolute and s >= self.relative * best for s in scores]


@dataclass(frozen=True)
class RankingModel:
    weights: tuple[float, ...]  # in FEATURE_NAMES order
    intercept: float
    bar: RelevanceBar  # on the ranker's probability
    kb_bar: RelevanceBar  # on KB articles' fused score
    calibration: tuple[float, float, float]  # see pipeline.note.confidence
    scope: str = "default"  # default | deployment | tenant
    model_id: int | None = None
    fitted_at: str | None = None
    examples: int = 0
    report: Mapping[str, Any] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        if self.scope == "default":
            return "default" + (f" ({self.fitted_at[:10]})" if self.fitted_at else "")
        return f"{self.scope} #{self.model_id}" if self.model_id is not None else self.scope

    def probabilities(self, candidates: Sequence[Candidate]) -> list[float]:
        if not candidates:
            return []
        x = np.asarray([c.features for c in candidates], dtype=np.float64)
        return [float(p) for p in sigmoid(x @ np.asarray(self.weights) + self.intercept)]

    def contributions(self, features: Sequence[float]) -> dict[str, float]:
        """Each feature's share of the candidate's logit (weight × value); with the intercept
        they add up to logit(probability)."""
        pairs = zip(FEATURE_NAMES, self.weights, features, strict=True)
        return {name: round(w * v, 4) for name, w, v in pairs}

    def record(
        self, candidates: Sequence[Candidate], probabilities: Sequence[float], shown: set[str]
    ) -> RankingRecord:
        """The ranking as the note's context carries it, candidates best first."""
        order = sorted(range(len(candidates)), key=lambda i: -probabilities[i])
        return RankingRecord(
            model=self.label,
            feature_names=list(FEATURE_NAMES),
            weights=list(self.weights),
            intercept=self.intercept,
            bar_absolute=self.bar.absolute,
            bar_relative=self.bar.relative,
            calibration=self.calibration,
            candidates=[
                RankedCandidate(
                    ticket_id=candidates[i].ticket_id,
                    rank=rank,
                    probability=round(min(1.0, max(0.0, probabilities[i])), 6),
                    shown=candidates[i].ticket_id in shown,
                    features=list(candidates[i].features),
                )
                for rank, i in enumerate(order, start=1)
            ],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "features": dict(zip(FEATURE_NAMES, self.weights, strict=True)),
            "intercept": self.intercept,
            "bar": {"absolute": self.bar.absolute, "relative": self.bar.relative},
            "kb_bar": {"absolute": self.kb_bar.absolute, "relative": self.kb_bar.relative},
            "calibration": {
                "slope": self.calibration[0],
                "llm_weight": self.calibration[1],
                "intercept": self.calibration[2],
            },
            "fitted_at": self.fitted_at,
            "examples": self.examples,
        }

    @classmethod
    def from_json(
        cls,
        data: Any,
        *,
        scope: str = "default",
        model_id: int | None = None,
        report: Mapping[str, Any] | None = None,
    ) -> RankingModel:
        if not isinstance(data, Mapping):
            raise ModelError("a model must be a JSON object")
        features = data.get("features")
        if not isinstance(features, Mapping):
            raise ModelError("'features' must map feature names to weights")
        weights = tuple(_number(features.get(n, 0.0), f"features.{n}") for n in FEATURE_NAMES)
        calibration = data.get("calibration") or {}
        if not isinstance(calibration, Mapping):
            raise ModelError("'calibration' must be an object")
        fitted_at = data.get("fitted_at")
        examples = data.get("examples", 0)
        return cls(
            weights=weights,
            intercept=_number(data.get("intercept", 0.0), "intercept"),
            bar=_bar(data.get("bar"), "bar"),
            kb_bar=_bar(data.get("kb_bar"), "kb_bar"),
            calibration=(
                _number(calibration.get("slope", 1.0), "calibration.slope"),
                _number(calibration.get("llm_weight", 0.0), "calibration.llm_weight"),
                _number(calibration.get("intercept", 0.0), "calibration.intercept"),
            ),
            scope=scope,
            model_id=model_id,
            fitted_at=str(fitted_at) if fitted_at else None,
            examples=int(examples) if isinstance(examples, int) and examples >= 0 else 0,
            report=dict(report or {}),
        )

    def with_scope(self, scope: str, model_id: int | None) -> RankingModel:
        return replace(self, scope=scope, model_id=model_id)


def _number(value: Any, name: str, *, low: float = -MAX_WEIGHT, high: float = MAX_WEIGHT) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ModelError(f"'{name}' must be a finite number")
    if not low <= value <= high:
        raise ModelError(f"'{name}' must be between {low:g} and {high:g}")
    return float(value)


def _bar(value: Any, name: str) -> RelevanceBar:
    if not isinstance(value, Mapping):
        raise ModelError(f"'{name}' must be an object with 'absolute' and 'relative'")
    return RelevanceBar(
        absolute=_number(value.get("absolute"), f"{name}.absolute", low=0.0, high=1.0),
        relative=_number(value.get("relative"), f"{name}.relative", low=0.0, high=1.0),
    )


@lru_cache(maxsize=1)
def default_model() -> RankingModel:
    """The shipped model, fitted on the demo data (``ai-agents eval retrieval --write-model``)."""
    return RankingModel.from_json(json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8")))
