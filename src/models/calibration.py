"""Probability calibration shared by the models: Platt scaling and isotonic maps.

A network trained with class weights, or a blend of scores, ranks well but its outputs
are not probabilities; the rules layer prices offers and inspections with them, so each
model maps its raw scores to probabilities on held-out rows with one of these.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    """Logistic function, clipped so large logits do not overflow."""
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def fit_platt(logits: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Platt scaling: ``(a, b)`` maximising the likelihood of ``sigmoid(a * logit + b)``.

    Unregularised maximum likelihood on the held-out rows (L-BFGS). With one class only
    there is nothing to fit and the identity ``(1, 0)`` is returned.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(np.unique(y)) < 2:
        return 1.0, 0.0

    def nll(ab):
        t = ab[0] * z + ab[1]
        return np.mean(np.logaddexp(0, t) - y * t)

    res = minimize(nll, x0=np.array([1.0, 0.0]), method="L-BFGS-B")
    return float(res.x[0]), float(res.x[1])


def apply_platt(logits: np.ndarray, a: float, b: float) -> np.ndarray:
    """Probabilities from raw logits and a fitted Platt scaling."""
    return sigmoid(a * np.asarray(logits, dtype=float) + b)


def fit_isotonic(x: np.ndarray, y: np.ndarray, y_min: float = 0.0, y_max: float = 1.0):
    """A non-decreasing map from scores to observed rates (clipped outside the range).

    Returns the fitted ``sklearn.isotonic.IsotonicRegression``; its ``X_thresholds_`` and
    ``y_thresholds_`` (or ``predict`` on a grid) are what a model stores.
    """
    from sklearn.isotonic import IsotonicRegression

    return IsotonicRegression(y_min=y_min, y_max=y_max, out_of_bounds="clip").fit(x, y)
