"""Measures of a ranking, a bar and a confidence, and choosing the bar from data."""

from __future__ import annotations

import pytest

from pipeline.retrieval.ranking.model import RelevanceBar
from pipeline.retrieval.ranking.quality import (
    Judged,
    choose_bar,
    expected_calibration_error,
    reliability,
    shown_by_bar,
    summarise,
)


def test_reliability_and_ece_by_hand() -> None:
    pairs = [(0.95, True), (0.95, True), (0.95, False), (0.15, False), (0.15, True)]
    table = reliability(pairs)
    assert table == [
        {"bin": "0.1-0.2", "notes": 2, "stated": 0.15, "observed": 0.5},
        {"bin": "0.9-1.0", "notes": 3, "stated": 0.95, "observed": 0.6667},
    ]
    # 2/5 · |0.15 − 0.5| + 3/5 · |0.95 − 0.6667|
    assert expected_calibration_error(pairs) == pytest.approx(0.14 + 0.17, abs=1e-3)
    assert expected_calibration_error([(1.0, True), (0.0, False)]) == 0.0
    assert expected_calibration_error([]) == 0.0


def test_summary_counts_what_the_note_showed() -> None:
    judged = [
        Judged("a", [True, False, True], shown=[True, False], confidence=0.9),
        Judged("b", [False, True], shown=[False, True], confidence=0.4),
        Judged("c", [False, False], shown=[], confidence=0.1),
    ]
    s = summarise(judged)
    assert s["recall_at_1"] == pytest.approx(1 / 3, abs=1e-3)
    assert s["recall_at_5"] == pytest.approx(2 / 3, abs=1e-3)
    assert s["mrr"] == pytest.approx((1 + 1 / 2 + 0) / 3, abs=1e-3)
    assert s["precision"] == 0.5  # 2 right of 4 shown
    assert s["noise_per_note"] == pytest.approx(2 / 3, abs=1e-3)
    assert s["notes_without_precedent"] == 1
    assert s["not_first"] == ["b", "c"]
    assert s["first_right"] == pytest.approx(1 / 3, abs=1e-3)
    assert "ece" in s and len(s["reliability"]) == 3


def test_a_bar_keeps_a_prefix_by_absolute_and_relative_score() -> None:
    j = Judged("q", [True, False, True, False], probabilities=[0.9, 0.5, 0.3, 0.1])
    assert shown_by_bar(j, RelevanceBar(0.0, 0.0)) == [True, False, True, False]
    assert shown_by_bar(j, RelevanceBar(0.4, 0.0)) == [True, False]
    assert shown_by_bar(j, RelevanceBar(0.0, 0.5)) == [True, False]  # 0.5 ≥ 0.45
    assert shown_by_bar(j, RelevanceBar(0.95, 0.0)) == []  # a note may show none
    assert RelevanceBar(0.2, 0.5).keeps([0.3, 0.2, 0.1]) == [True, True, False]


def test_the_chosen_bar_maximises_precision_within_the_recall_allowance() -> None:
    # right precedents score 0.7-0.9; the wrong ones 0.1-0.35, except one query whose only
    # right precedent scores 0.2 behind a wrong one at 0.6
    judged = [
        Judged(f"q{i}", [True, True, False, False], probabilities=[0.9, 0.7, 0.35, 0.1])
        for i in range(9)
    ] + [Judged("hard", [False, True, False], probabilities=[0.6, 0.2, 0.1])]
    strict = choose_bar(judged)
    assert strict.recall_at_5 == strict.recall_at_5_without_bar == 1.0
    assert strict.bar.absolute <= 0.2 and strict.bar.relative <= 0.33  # keeps "hard"'s 0.2
    # so every other query also shows its 0.35 (not its 0.1): 19 right of 29 shown
    assert strict.precision == pytest.approx(19 / 29, abs=1e-3)
    assert strict.shown_per_note == 2.9
    # giving up "hard" (one query in ten) lets the bar rise past 0.6: only right ones shown
    loose = choose_bar(judged, max_recall_loss=0.1)
    assert loose.recall_at_5 == 0.9 and loose.precision == 1.0
    assert 0.6 < loose.bar.absolute <= 0.7  # a relative bar cannot cut a query's own best
    assert choose_bar([]).bar == RelevanceBar(0.0, 0.0)
