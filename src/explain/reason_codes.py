"""Top-k reason codes for one request (or a batch), fast enough to ride along an API call.

Method — baseline occlusion, one batched model call:

    contribution_j(x) = f(x) - f(x with feature j set to its background mean)

for every feature j at once: the ``n`` requests become an ``n x (p + 1)`` stack of rows
(each request, plus one copy per feature with that feature "switched off") scored in a
single ``score_features`` call. It is the exact SHAP value when the model is additive in
its features, a first-order approximation otherwise (interactions are not split between
features, so contributions need not sum to ``f(x) - f(baseline)``). Full SHAP values are
in the reports; the reports also measure how often the two agree on the top feature.

Cost: one forward pass over ``n * (p + 1)`` rows plus ``features(raw)``; for ppx's models
(tens of features, small MLPs) that is well under a millisecond of network time per
request. The background mean is computed once per model object and cached.

Output per request: a list of ``k`` dicts, largest absolute contribution first::

    {"feature": "late_deliveries_90d", "value": 2.0, "baseline": 0.31,
     "contribution": 0.084, "direction": "raises",
     "text": "late deliveries 90d = 2 (typical 0.31) raises churn risk by 0.084"}
"""

from __future__ import annotations

import contextlib
import weakref

import numpy as np
import pandas as pd

from ppx.explain.labels import feature_label, format_value, score_label
from ppx.explain.shapley import align_features, check_model, scorer

_BASELINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def baseline(model) -> np.ndarray:
    """Background mean of every feature (cached per model object: background() may be slow)."""
    try:
        cached = _BASELINES.get(model)
    except TypeError:  # not weak-referenceable / hashable: compute each time
        cached = None
    if cached is not None:
        return cached
    bg = align_features(model.background(), list(model.feature_names), "background()")
    if len(bg) == 0:
        raise ValueError("background() returned no rows; reason codes need a reference")
    base = bg.mean(axis=0).to_numpy(dtype=np.float64)
    with contextlib.suppress(TypeError):
        _BASELINES[model] = base
    return base


def contributions(model, X: pd.DataFrame) -> np.ndarray:
    """Occlusion contributions, shape (rows, features), from one batched scoring call."""
    names = list(model.feature_names)
    A = align_features(X, names).to_numpy(dtype=np.float64)
    n, p = A.shape
    if n == 0:
        return np.zeros((0, p))
    base = baseline(model)
    stack = np.repeat(A[:, None, :], p + 1, axis=1)  # (n, p+1, p)
    idx = np.arange(p)
    stack[:, idx + 1, idx] = base[idx]
    scores = scorer(model)(stack.reshape(n * (p + 1), p)).reshape(n, p + 1)
    return scores[:, :1] - scores[:, 1:]


def reason_codes(
    model, raw_df: pd.DataFrame, k: int = 3, X: pd.DataFrame | None = None, model_name: str = ""
) -> list[list[dict]]:
    """Top-``k`` contributions for each raw request row.

    Args:
        model: an ExplainableModel (the object behind a loaded pyfunc).
        raw_df: raw request rows, as the model's pyfunc ``predict`` takes them.
        k: how many reasons per request.
        X: the request's features if the caller already computed them (serving does, to
            score); skips a second ``model.features(raw_df)``.
        model_name: ``delivery``/``churn``/``fraud``/``recs``, for the wording of ``text``.

    Returns:
        One list per request row, each with up to ``k`` reason dicts (see module doc).
    """
    check_model(model)
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    feats = model.features(raw_df) if X is None else X
    names = list(model.feature_names)
    A = align_features(feats, names, "features")
    C = contributions(model, A)
    base = baseline(model)
    what = score_label(model, model_name)
    labels = getattr(model, "feature_labels", None) or {}
    out: list[list[dict]] = []
    order = np.argsort(-np.abs(C), axis=1, kind="stable")[:, :k]
    for i in range(len(A)):
        reasons = []
        for j in order[i]:
            c = float(C[i, j])
            name = names[j]
            value = float(A.iat[i, j])
            direction = "raises" if c > 0 else "lowers" if c < 0 else "does not change"
            label = labels.get(name) or feature_label(name)
            reasons.append(
                {
                    "feature": name,
                    "value": value,
                    "baseline": float(base[j]),
                    "contribution": c,
                    "direction": direction,
                    "text": (
                        f"{label} = {format_value(value)} (typical {format_value(base[j])}) "
                        f"{direction} {what} by {abs(c):.3g}"
                    ),
                }
            )
        out.append(reasons)
    return out
