"""Fitting weights, bar and calibration from labelled queries, each on data the step before
never saw; a refit on few outcomes stays near the model it replaces."""

from __future__ import annotations

import random

import numpy as np
import pytest

from pipeline.retrieval.ranking.features import FEATURE_NAMES
from pipeline.retrieval.ranking.fitting import FitSettings, LabelledQuery, fit_model
from pipeline.retrieval.ranking.model import RankingModel, RelevanceBar
from pipeline.retrieval.ranking.quality import Judged, expected_calibration_error

SUBJECT = FEATURE_NAMES.index("subject")
RECENCY = FEATURE_NAMES.index("recency")


def _queries(count: int, seed: int) -> list[LabelledQuery]:
    """Right candidates share more of the ticket's words in their subject; recency is noise."""
    rng = random.Random(seed)
    out = []
    for q in range(count):
        features, labels = [], []
        for _ in range(12):
            right = rng.random() < 0.25
            values = [0.0] * len(FEATURE_NAMES)
            values[SUBJECT] = min(1.0, max(0.0, rng.gauss(0.7 if right else 0.3, 0.15)))
            values[RECENCY] = rng.random()
            features.append(tuple(values))
            labels.append(right)
        out.append(LabelledQuery(f"q{q}", features, labels))
    return out


def test_fit_learns_the_signal_and_ignores_the_noise() -> None:
    fitted = fit_model(_queries(300, 1), prior=None)
    weights = dict(zip(FEATURE_NAMES, fitted.model.weights, strict=True))
    assert weights["subject"] > 8 and abs(weights["recency"]) < 1
    report = fitted.report
    assert report["queries"] == 300 and report["candidates"] == 3600
    assert report["bar_chosen"]["used"] is True
    assert (
        report["bar_chosen"]["recall_at_5"]
        >= report["bar_chosen"]["recall_at_5_without_bar"] - 0.01
    )
    assert report["out_of_fold"]["precision"] > 0.6


def test_the_calibration_holds_on_fresh_queries() -> None:
    model = fit_model(_queries(400, 2), prior=None).model
    pairs = []
    for q in _queries(400, 3):
        x = np.asarray(q.features)
        p = 1 / (1 + np.exp(-(x @ np.asarray(model.weights) + model.intercept)))
        first = int(np.argmax(p))
        slope, _, intercept = model.calibration
        z = slope * np.log(p[first] / (1 - p[first])) + intercept
        pairs.append((float(1 / (1 + np.exp(-z))), bool(q.labels[first])))
    assert expected_calibration_error(pairs) < 0.06


def test_a_refit_on_few_outcomes_stays_near_its_prior() -> None:
    prior = fit_model(_queries(300, 4), prior=None).model
    few = _queries(8, 5)
    refit = fit_model(few, prior=prior, settings=FitSettings(l2=50.0, calibration_l2=50.0))
    assert np.allclose(refit.model.weights, prior.weights, atol=1.0)
    assert refit.model.bar == prior.bar  # 8 queries: too few to choose a bar
    assert refit.report["bar_chosen"]["used"] is False
    assert refit.model.calibration == pytest.approx(prior.calibration, abs=0.3)


def test_kb_bar_and_what_cannot_be_fitted() -> None:
    kb = [Judged(f"k{i}", [True, False, False], probabilities=[0.6, 0.3, 0.1]) for i in range(20)]
    fitted = fit_model(_queries(60, 6), prior=None, kb=kb)
    assert fitted.model.kb_bar.absolute > 0.1 or fitted.model.kb_bar.relative > 0.17
    assert fitted.report["kb_bar_chosen"]["precision"] == 1.0
    with pytest.raises(ValueError, match="no labelled candidates"):
        fit_model([LabelledQuery("x", [tuple([0.0] * len(FEATURE_NAMES))], [None])], prior=None)


def test_queries_not_marked_for_calibration_do_not_move_it() -> None:
    easy = _queries(200, 7)
    for q in easy:
        q.calibrate = False
    prior = RankingModel(
        weights=tuple([0.0] * len(FEATURE_NAMES)),
        intercept=0.0,
        bar=RelevanceBar(0.0, 0.0),
        kb_bar=RelevanceBar(0.0, 0.0),
        calibration=(0.7, 0.0, 0.3),
    )
    fitted = fit_model(easy, prior=prior)
    assert fitted.model.calibration == prior.calibration
