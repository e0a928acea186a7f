"""The logistic regression behind the ranker and the calibration: it recovers known weights,
a strong pull keeps a prior, and it refuses input it cannot fit."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.retrieval.ranking.logistic import fit_logistic, logit, sigmoid


def _synthetic(rows: int, weights: list[float], intercept: float, seed: int = 7):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, size=(rows, len(weights)))
    p = sigmoid(x @ np.asarray(weights) + intercept)
    return x, (rng.uniform(0, 1, rows) < p).astype(float)


def test_recovers_the_weights_that_made_the_data() -> None:
    x, y = _synthetic(20_000, [4.0, -2.0, 0.0], -1.0)
    fitted = fit_logistic(x, y, l2=0.01)
    assert np.allclose(fitted.weights, [4.0, -2.0, 0.0], atol=0.25), fitted.weights
    assert fitted.intercept == pytest.approx(-1.0, abs=0.2)
    assert fitted.iterations < 30
    assert np.allclose(
        fitted.predict(x[:3]), sigmoid(x[:3] @ np.array(fitted.weights) + fitted.intercept)
    )


def test_a_strong_pull_keeps_the_prior_and_data_moves_a_weak_one() -> None:
    x, y = _synthetic(200, [4.0, -2.0], 0.0)
    prior = [1.0, 1.0]
    held = fit_logistic(x, y, l2=1e6, prior=prior)
    assert np.allclose(held.weights, prior, atol=0.01)
    moved = fit_logistic(x, y, l2=0.1, prior=prior)
    assert moved.weights[0] > 2.0 and moved.weights[1] < 0.0


def test_one_class_and_weighted_data_stay_finite() -> None:
    x = np.array([[0.1], [0.9], [0.5]])
    fitted = fit_logistic(x, [1.0, 1.0, 1.0], l2=1.0)
    assert all(np.isfinite(fitted.weights)) and np.isfinite(fitted.intercept)
    assert float(fitted.predict(x).min()) > 0.9
    # a zero weight removes a row: the fit equals the fit without it
    two = fit_logistic([[0.0], [1.0], [1.0]], [0.0, 1.0, 0.0], sample_weight=[1, 1, 0])
    one = fit_logistic([[0.0], [1.0]], [0.0, 1.0])
    assert two.weights == pytest.approx(one.weights) and two.intercept == pytest.approx(
        one.intercept
    )


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        ([], [], "non-empty"),
        ([[1.0], [2.0]], [1.0], "labels"),
        ([[float("nan")]], [1.0], "finite"),
    ],
)
def test_refuses_what_it_cannot_fit(x: list, y: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fit_logistic(x, y)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_logistic([[1.0]], [1.0], sample_weight=[-1.0])
    with pytest.raises(ValueError, match="prior"):
        fit_logistic([[1.0]], [1.0], prior=[1.0, 2.0])


def test_logit_and_sigmoid_are_inverse_and_clipped() -> None:
    p = np.array([1e-9, 0.2, 0.5, 0.9, 1.0])
    assert np.allclose(sigmoid(logit(p))[1:4], p[1:4])
    assert np.isfinite(logit(p)).all()
