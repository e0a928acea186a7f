"""A fitted model as JSON: round trip, the shipped default, and refusing bad documents."""

from __future__ import annotations

import json
import math

import pytest

from pipeline.retrieval.ranking.features import FEATURE_NAMES, Candidate
from pipeline.retrieval.ranking.model import (
    DEFAULT_MODEL_PATH,
    ModelError,
    RankingModel,
    RelevanceBar,
    default_model,
)
from pipeline.retrieval.ranking.ranker import rank


def _model(**overrides: object) -> RankingModel:
    fields = {
        "weights": tuple(float(i) for i in range(len(FEATURE_NAMES))),
        "intercept": -3.0,
        "bar": RelevanceBar(0.2, 0.5),
        "kb_bar": RelevanceBar(0.1, 0.7),
        "calibration": (1.5, 0.4, -0.2),
    }
    fields.update(overrides)
    return RankingModel(**fields)  # type: ignore[arg-type]


def test_json_round_trip_and_labels() -> None:
    model = _model()
    back = RankingModel.from_json(
        json.loads(json.dumps(model.to_json())), scope="tenant", model_id=4
    )
    assert (back.weights, back.intercept, back.bar, back.kb_bar, back.calibration) == (
        model.weights,
        model.intercept,
        model.bar,
        model.kb_bar,
        model.calibration,
    )
    assert back.label == "tenant #4"
    assert _model(fitted_at="2026-12-07T10:00:00+00:00").label == "default (2026-12-07)"


def test_the_shipped_default_model_reads_and_ranks() -> None:
    model = default_model()
    assert model.scope == "default" and len(model.weights) == len(FEATURE_NAMES)
    document = json.loads(DEFAULT_MODEL_PATH.read_text())
    assert set(document["features"]) == set(FEATURE_NAMES)
    assert 0.0 <= model.bar.absolute <= 1.0 and document["report"]["queries"] > 100


def test_weights_map_by_name() -> None:
    document = _model().to_json()
    del document["features"]["recency"]  # a model fitted before a feature existed
    document["features"]["retired_feature"] = 9.0  # or after one was dropped
    model = RankingModel.from_json(document)
    assert model.weights[FEATURE_NAMES.index("recency")] == 0.0
    assert len(model.weights) == len(FEATURE_NAMES)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(intercept=math.nan), "intercept"),
        (lambda d: d["features"].update(fused=1e9), "features.fused"),
        (lambda d: d["features"].update(fused="1"), "features.fused"),
        (lambda d: d.update(bar={"absolute": 1.5, "relative": 0}), "bar.absolute"),
        (lambda d: d.update(kb_bar=None), "kb_bar"),
        (lambda d: d.update(features=[1, 2]), "features"),
        (lambda d: d.update(calibration={"slope": math.inf}), "calibration.slope"),
    ],
)
def test_bad_documents_are_refused_with_the_field(mutate, message: str) -> None:
    document = _model().to_json()
    mutate(document)
    with pytest.raises(ModelError, match=message):
        RankingModel.from_json(document)
    with pytest.raises(ModelError, match="JSON object"):
        RankingModel.from_json([1, 2])


def _candidate(ticket_id: str, fused: float, embedding: tuple[float, ...]) -> Candidate:
    features = tuple([fused] + [0.0] * (len(FEATURE_NAMES) - 1))
    return Candidate(ticket_id, f"subject {ticket_id}", "fix", None, fused, features, embedding)


def test_rank_orders_cuts_spreads_and_records_every_candidate() -> None:
    weights = tuple([10.0] + [0.0] * (len(FEATURE_NAMES) - 1))
    model = _model(weights=weights, intercept=-5.0, bar=RelevanceBar(0.3, 0.0))
    candidates = [
        _candidate("low", 0.2, (0.0, 1.0)),  # p = σ(-3) = 0.05: under the bar
        _candidate("best", 0.9, (1.0, 0.0)),  # p = σ(4) = 0.98
        _candidate("copy", 0.85, (1.0, 0.01)),  # a near-duplicate of "best"
        _candidate("other", 0.8, (0.0, 1.0)),  # p = σ(3) = 0.95, a different incident
    ]
    ranked = rank(model, candidates, limit=5, diversity=0.5)
    assert [c.ticket_id for c, _ in ranked.ordered] == ["best", "copy", "other", "low"]
    # the bar drops "low"; the spread puts the different incident before the copy
    assert [c.ticket_id for c, _ in ranked.shown] == ["best", "other", "copy"]
    record = ranked.record
    assert [c.ticket_id for c in record.candidates] == ["best", "copy", "other", "low"]
    assert [c.shown for c in record.candidates] == [True, True, True, False]
    assert record.top_probability == pytest.approx(0.982, abs=1e-3)
    assert record.calibration == (1.5, 0.4, -0.2) and record.model == "default"
    contributions = model.contributions(candidates[1].features)
    assert contributions["fused"] == pytest.approx(9.0) and contributions["recency"] == 0.0
    nothing = rank(model, [candidates[0]], limit=5)
    assert nothing.shown == [] and nothing.record.candidates[0].shown is False
    everything = rank(model, candidates, limit=2, apply_bar=False, diversity=0.0)
    assert [c.ticket_id for c, _ in everything.shown] == ["best", "copy"]
