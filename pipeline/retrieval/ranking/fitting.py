"""Fit a second-stage model from labelled queries: the ranker's weights, the relevance bar and
the confidence's calibration, in that order, each from data the previous step never saw.

1. **Weights**: logistic regression over every labelled candidate (relevant or not), pulled
   towards the prior model's weights (``l2``): the shipped default starts from zeros, a refit
   starts from the model it replaces, so a few outcomes move it a little.
2. **Out-of-fold probabilities**: the queries are split into ``folds`` groups; each group is
   scored by weights fitted on the others. The bar and the calibration are chosen on these, so
   neither is tuned on probabilities the weights were fitted to.
3. **Bar**: :func:`~pipeline.retrieval.ranking.quality.choose_bar` — the highest precision of
   shown precedents that keeps recall@5 (``max_recall_loss``). Kept from the prior when fewer
   than ``min_queries_for_bar`` queries have a relevant candidate.
4. **Calibration**: Platt scaling of the first candidate's probability (and the LLM's own
   confidence when there is one) against whether that candidate was right, pulled towards the
   prior's calibration; on the queries marked ``calibrate`` (the evaluation leaves out
   replayed history: resolved tickets' own texts are easier than new tickets as users write
   them, and a confidence calibrated on them overstates).
5. **KB bar**: the same choice over KB articles' fused scores, when KB labels are given.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from pipeline.retrieval.ranking.features import FEATURE_NAMES
from pipeline.retrieval.ranking.logistic import Fitted, fit_logistic, logit, sigmoid
from pipeline.retrieval.ranking.model import RankingModel, RelevanceBar
from pipeline.retrieval.ranking.quality import Judged, choose_bar, summarise


@dataclass
class LabelledQuery:
    """One query's candidates (features in ``FEATURE_NAMES`` order) and their labels (None:
    unknown, left out of every fit)."""

    group: str
    features: list[tuple[float, ...]]
    labels: list[bool | None]
    llm_confidence: float | None = None
    wording: str = ""
    calibrate: bool = True  # may the confidence's calibration be fitted on this query


@dataclass(frozen=True)
class FitSettings:
    l2: float = 1.0  # pull of the weights towards the prior's
    calibration_l2: float = 1.0
    folds: int = 5
    # what the bar may cost in recall@5 (of the first five, unbarred): one point buys about
    # twenty points of precision on the demo data (docs/architecture/retrieval-quality.md)
    max_recall_loss: float = 0.01
    min_queries_for_bar: int = 50
    kb_limit: int = 3


@dataclass
class FitResult:
    model: RankingModel
    report: dict[str, Any] = field(default_factory=dict)


def _rows(queries: Sequence[LabelledQuery]) -> tuple[np.ndarray, np.ndarray]:
    x = [f for q in queries for f, y in zip(q.features, q.labels, strict=True) if y is not None]
    y = [float(y) for q in queries for y in q.labels if y is not None]
    width = len(x[0]) if x else len(FEATURE_NAMES)
    return np.asarray(x, dtype=np.float64).reshape(-1, width), np.asarray(y)


def fit_weights(
    queries: Sequence[LabelledQuery], *, prior: RankingModel | None, l2: float
) -> Fitted | None:
    x, y = _rows(queries)
    if not len(y):
        return None
    return fit_logistic(
        x,
        y,
        l2=l2,
        prior=list(prior.weights) if prior else None,
        prior_intercept=prior.intercept if prior else 0.0,
        intercept_l2=l2 if prior else 0.0,
    )


def out_of_fold(
    queries: Sequence[LabelledQuery], *, prior: RankingModel | None, l2: float, folds: int
) -> list[list[float]]:
    """Each query's candidate probabilities from weights fitted without its fold."""
    out: list[list[float]] = [[] for _ in queries]
    fold_of = [i % max(folds, 1) for i in range(len(queries))]
    for fold in range(max(folds, 1)):
        rest = [q for q, f in zip(queries, fold_of, strict=True) if f != fold]
        fitted = fit_weights(rest, prior=prior, l2=l2) if rest else None
        for i, q in enumerate(queries):
            if fold_of[i] != fold or not q.features:
                continue
            if fitted is None:
                weights, intercept = (
                    (np.asarray(prior.weights), prior.intercept)
                    if prior
                    else (np.zeros(len(q.features[0])), 0.0)
                )
            else:
                weights, intercept = np.asarray(fitted.weights), fitted.intercept
            z = np.asarray(q.features, dtype=np.float64) @ weights + intercept
            out[i] = [float(p) for p in sigmoid(z)]
    return out


def judged_from(
    queries: Sequence[LabelledQuery], probabilities: Sequence[list[float]]
) -> list[Judged]:
    """Queries as ranked by ``probabilities``: labelled candidates only, best first."""
    out = []
    for q, probs in zip(queries, probabilities, strict=True):
        pairs = sorted(
            ((p, y) for p, y in zip(probs, q.labels, strict=True) if y is not None),
            key=lambda py: -py[0],
        )
        if pairs:
            out.append(
                Judged(
                    case_id=q.group,
                    relevant=[bool(y) for _, y in pairs],
                    probabilities=[p for p, _ in pairs],
                    wording=q.wording,
                )
            )
    return out


def fit_calibration(
    firsts: Sequence[float],
    llm: Sequence[float | None],
    outcomes: Sequence[bool],
    *,
    prior: tuple[float, float, float],
    l2: float,
) -> tuple[float, float, float]:
    """Platt scaling: (slope on logit(first probability), weight of the LLM's confidence
    centred on 0.5, intercept); the prior's values when there are no outcomes."""
    if not outcomes:
        return prior
    x = np.column_stack(
        [
            logit(np.asarray(firsts, dtype=np.float64)),
            [(min(max(c, 0.0), 1.0) - 0.5) if c is not None else 0.0 for c in llm],
        ]
    )
    fitted = fit_logistic(
        x,
        [float(o) for o in outcomes],
        l2=l2,
        prior=[prior[0], prior[1]],
        prior_intercept=prior[2],
        intercept_l2=l2,
    )
    return (
        round(fitted.weights[0], 6),
        round(fitted.weights[1], 6),
        round(fitted.intercept, 6),
    )


def fit_model(
    queries: Sequence[LabelledQuery],
    *,
    prior: RankingModel | None,
    settings: FitSettings = FitSettings(),
    kb: Sequence[Judged] = (),
    scope: str = "default",
) -> FitResult:
    """Weights, bar, calibration (and KB bar) from ``queries``; see the module's steps."""
    labelled = [q for q in queries if any(y is not None for y in q.labels)]
    fitted = fit_weights(labelled, prior=prior, l2=settings.l2)
    if fitted is None:
        raise ValueError("no labelled candidates to fit on")
    oof = out_of_fold(labelled, prior=prior, l2=settings.l2, folds=settings.folds)
    judged = judged_from(labelled, oof)
    with_positive = sum(any(j.relevant) for j in judged)
    bar_choice = choose_bar(judged, max_recall_loss=settings.max_recall_loss)
    bar = (
        bar_choice.bar
        if with_positive >= settings.min_queries_for_bar or prior is None
        else prior.bar
    )
    for_calibration = [(q, j) for q, j in zip(labelled, judged, strict=True) if q.calibrate]
    calibration = fit_calibration(
        [j.probabilities[0] for _, j in for_calibration],
        [q.llm_confidence for q, _ in for_calibration],
        [j.relevant[0] for _, j in for_calibration],
        prior=prior.calibration if prior else (1.0, 0.0, 0.0),
        l2=settings.calibration_l2,
    )
    kb_choice = (
        choose_bar(kb, limit=settings.kb_limit, max_recall_loss=settings.max_recall_loss)
        if kb
        else None
    )
    kb_bar = (
        kb_choice.bar
        if kb_choice is not None
        else (prior.kb_bar if prior else RelevanceBar(0.0, 0.0))
    )
    model = RankingModel(
        weights=tuple(round(w, 6) for w in fitted.weights),
        intercept=round(fitted.intercept, 6),
        bar=bar,
        kb_bar=kb_bar,
        calibration=calibration,
        scope=scope,
        fitted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        examples=len(_rows(labelled)[1]),
    )
    for j in judged:  # out-of-fold: what the chosen bar and calibration do on unseen folds
        j.shown = [
            ok for ok, keep in zip(j.relevant, bar.keeps(j.probabilities), strict=True) if keep
        ][:5]
        j.confidence = None
    report: dict[str, Any] = {
        "queries": len(labelled),
        "queries_with_a_relevant_candidate": with_positive,
        "candidates": model.examples,
        "bar_chosen": {
            "absolute": bar_choice.bar.absolute,
            "relative": bar_choice.bar.relative,
            "precision": bar_choice.precision,
            "recall_at_5": bar_choice.recall_at_5,
            "recall_at_5_without_bar": bar_choice.recall_at_5_without_bar,
            "used": bar == bar_choice.bar,
        },
        "out_of_fold": {k: v for k, v in summarise(judged).items() if k != "not_first"},
        "log_loss": round(fitted.log_loss, 4),
    }
    if kb_choice is not None:
        report["kb_bar_chosen"] = {
            "absolute": kb_choice.bar.absolute,
            "relative": kb_choice.bar.relative,
            "precision": kb_choice.precision,
            "recall_at_3": kb_choice.recall_at_5,
        }
    return FitResult(model=replace(model, report=report), report=report)
