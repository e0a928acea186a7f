"""Logistic regression with numpy: Newton's method (iteratively reweighted least squares) on
the weighted log-loss with an L2 pull towards prior weights.

Small and inspectable on purpose: a handful of features, one weight each, and a fitted model is
its weights. The pull towards a prior (``prior``, zeros by default) is what lets a refit on a
few outcomes move the weights a little instead of replacing them: with ``l2`` large against the
number of examples the prior wins, with many examples the data does. The intercept is pulled
only when asked (``intercept_l2``): a refit should keep the prior's, a first fit must not.
Used for the ranker (many features) and for Platt scaling of the confidence (two).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Matrix = NDArray[np.float64]
_EPS = 1e-6


def sigmoid(z: Matrix | float) -> Matrix:
    return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -35.0, 35.0))), dtype=np.float64)


def logit(p: Matrix | float) -> Matrix:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.asarray(np.log(q / (1 - q)), dtype=np.float64)


@dataclass(frozen=True)
class Fitted:
    weights: tuple[float, ...]
    intercept: float
    iterations: int
    log_loss: float  # mean weighted log-loss on the fitting data

    def predict(self, x: Matrix) -> Matrix:
        return sigmoid(x @ np.asarray(self.weights) + self.intercept)


def fit_logistic(
    x: Sequence[Sequence[float]] | Matrix,
    y: Sequence[float] | Matrix,
    *,
    l2: float = 1.0,
    prior: Sequence[float] | None = None,
    prior_intercept: float = 0.0,
    intercept_l2: float = 0.0,
    sample_weight: Sequence[float] | Matrix | None = None,
    max_iterations: int = 100,
    tolerance: float = 1e-8,
) -> Fitted:
    """Minimise ``Σ wᵢ·logloss(yᵢ, σ(xᵢ·β + b)) + l2/2·|β − prior|²``.

    ``y`` holds 0/1 labels (or probabilities). Raises ``ValueError`` for empty or mismatched
    input; a data set of one class fits fine (the prior and ``l2`` keep the weights finite).
    """
    features = np.asarray(x, dtype=np.float64)
    labels = np.asarray(y, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] == 0:
        raise ValueError("need a non-empty 2-D feature matrix")
    rows, columns = features.shape
    if labels.shape != (rows,):
        raise ValueError(f"{rows} rows of features but {labels.shape} labels")
    if not np.all(np.isfinite(features)) or not np.all(np.isfinite(labels)):
        raise ValueError("features and labels must be finite")
    weight = np.ones(rows) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    if weight.shape != (rows,) or np.any(weight < 0):
        raise ValueError("sample_weight must be one non-negative number per row")
    centre = np.zeros(columns) if prior is None else np.asarray(prior, dtype=np.float64)
    if centre.shape != (columns,):
        raise ValueError(f"prior must have {columns} weights")
    design = np.hstack([features, np.ones((rows, 1))])
    beta = np.append(centre, prior_intercept)
    penalty = np.full(columns + 1, max(l2, 0.0))
    penalty[-1] = max(intercept_l2, 1e-9)  # a hair of ridge keeps one-class data finite
    target = np.append(centre, prior_intercept)
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        p = sigmoid(design @ beta)
        gradient = design.T @ (weight * (p - labels)) + penalty * (beta - target)
        curvature = weight * p * (1 - p)
        hessian = design.T @ (design * curvature[:, None]) + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, gradient)
        beta = beta - step
        if float(np.max(np.abs(step))) < tolerance:
            break
    p = np.clip(sigmoid(design @ beta), _EPS, 1 - _EPS)
    loss = -(weight * (labels * np.log(p) + (1 - labels) * np.log(1 - p))).sum() / max(
        weight.sum(), _EPS
    )
    return Fitted(
        weights=tuple(float(b) for b in beta[:-1]),
        intercept=float(beta[-1]),
        iterations=iterations,
        log_loss=float(loss),
    )
