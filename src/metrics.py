"""Every metric once: its function, its direction, and one input check for all of them.

Each model's ``evaluate.py`` picks the metrics it reports from here, so two models never
compute "ROC AUC" or "ECE" two ways, and the promotion gate, the benchmarks and the
tests agree on which way is better. :data:`METRICS` maps a metric's name (the names the
benchmarks and MLflow use: ``roc_auc``, ``pinball_0_9``, ``ndcg_10`` ...) to a
:class:`Metric`; :func:`score` looks one up and applies it, :func:`better` compares two
values by the metric's direction.

Every function validates its inputs through :func:`check_inputs` (after microsoft/
recommenders' ``python_evaluation``): equal lengths, one dimension, finite values,
binary labels and probabilities where the metric needs them. A ranking metric on one
class only (no positives or no negatives, common in a tiny split) is NaN, not an error.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Literal

import numpy as np

Direction = Literal["maximize", "minimize", "target"]


class MetricInputError(ValueError):
    """The arrays given to a metric cannot be scored; the message says which and why."""


def check_inputs(
    name: str,
    y_true,
    y_pred,
    *,
    binary: bool = False,
    probability: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert ``(y_true, y_pred)`` for metric ``name``.

    Args:
        name: the metric, named in every error message.
        y_true: labels or targets, one per row.
        y_pred: scores, probabilities or predictions, one per row.
        binary: labels must be 0/1 (or booleans).
        probability: predictions must lie in [0, 1].

    Returns:
        ``(y_true, y_pred)`` as 1-D float arrays.

    Raises:
        MetricInputError: on empty, mismatched, multi-dimensional or non-finite input,
            non-binary labels or out-of-range probabilities.
    """
    y = np.asarray(y_true, dtype=float)
    p = np.asarray(y_pred, dtype=float)
    if y.ndim != 1 or p.ndim != 1:
        raise MetricInputError(f"{name}: expected 1-D arrays, got shapes {y.shape} and {p.shape}")
    if len(y) != len(p):
        raise MetricInputError(f"{name}: {len(y)} labels but {len(p)} predictions")
    if len(y) == 0:
        raise MetricInputError(f"{name}: no rows to score")
    for what, a in (("labels", y), ("predictions", p)):
        bad = ~np.isfinite(a)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise MetricInputError(f"{name}: {bad.sum()} non-finite {what} (rows {rows})")
    if binary:
        bad = (y != 0) & (y != 1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise MetricInputError(f"{name}: labels must be 0/1, rows {rows} are not")
    if probability:
        bad = (p < 0) | (p > 1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise MetricInputError(f"{name}: probabilities must be in [0, 1], rows {rows} are not")
    return y, p


def _both_classes(y: np.ndarray) -> bool:
    return bool(y.any() and not y.all())


# --- classification -------------------------------------------------------------------


def roc_auc(y_true, score) -> float:
    """Area under the ROC curve (ties count half); NaN when one class is missing."""
    from sklearn.metrics import roc_auc_score

    y, s = check_inputs("roc_auc", y_true, score, binary=True)
    return float(roc_auc_score(y, s)) if _both_classes(y) else float("nan")


def pr_auc(y_true, score) -> float:
    """Average precision (area under the precision-recall curve); NaN on one class."""
    from sklearn.metrics import average_precision_score

    y, s = check_inputs("pr_auc", y_true, score, binary=True)
    return float(average_precision_score(y, s)) if _both_classes(y) else float("nan")


def recall_at_fpr(y_true, score, max_fpr: float = 0.01) -> float:
    """Highest recall reachable with a false-positive rate of at most ``max_fpr``."""
    from sklearn.metrics import roc_curve

    y, s = check_inputs("recall_at_fpr", y_true, score, binary=True)
    if not _both_classes(y):
        return float("nan")
    fpr, tpr, _ = roc_curve(y, s)
    return float(tpr[fpr <= max_fpr].max())


def brier(y_true, prob) -> float:
    """Mean squared error of a probability."""
    y, p = check_inputs("brier", y_true, prob, binary=True, probability=True)
    return float(np.mean((p - y) ** 2))


def ece(y_true, prob, bins: int = 10) -> float:
    """Expected calibration error over ``bins`` equal-width probability bins."""
    y, p = check_inputs("ece", y_true, prob, binary=True, probability=True)
    idx = np.minimum((p * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def lift_top_decile(y_true, score) -> float:
    """Positive rate among the 10% highest scores over the overall positive rate."""
    y, s = check_inputs("lift_top_decile", y_true, score, binary=True)
    k = max(1, int(np.ceil(0.1 * len(y))))
    top = np.argsort(-s, kind="stable")[:k]
    base = y.mean()
    return float(y[top].mean() / base) if base > 0 else float("nan")


# --- regression and quantiles ----------------------------------------------------------


def mae(y_true, pred) -> float:
    """Mean absolute error."""
    y, p = check_inputs("mae", y_true, pred)
    return float(np.mean(np.abs(y - p)))


def pinball(y_true, q_pred, q: float) -> float:
    """Pinball (quantile) loss of ``q_pred`` as the ``q``-quantile of ``y_true``."""
    if not 0.0 < q < 1.0:
        raise MetricInputError(f"pinball: quantile must be in (0, 1), got {q}")
    y, p = check_inputs(f"pinball_{q}", y_true, q_pred)
    e = y - p
    return float(np.mean(np.maximum(q * e, (q - 1) * e)))


def coverage(y_true, upper) -> float:
    """Share of rows whose outcome is at or below the promised upper bound."""
    y, u = check_inputs("coverage", y_true, upper)
    return float(np.mean(y <= u))


# --- ranking ---------------------------------------------------------------------------


def _ranks(name: str, ranks) -> np.ndarray:
    r = np.asarray(ranks, dtype=float)
    check_inputs(name, r, r)
    if (r < 0).any():
        raise MetricInputError(f"{name}: ranks are 0-based and must be >= 0")
    return r


def hit_rate(ranks, k: int = 10) -> float:
    """Share of rows whose held-out item is ranked in the top ``k`` (ranks 0-based)."""
    r = _ranks(f"hr_{k}", ranks)
    return float((r < k).mean())


def ndcg(ranks, k: int = 10) -> float:
    """NDCG@k with one relevant item per row: 1 / log2(rank + 2) inside the top k."""
    r = _ranks(f"ndcg_{k}", ranks)
    return float(np.where(r < k, 1.0 / np.log2(r + 2.0), 0.0).mean())


# --- the registry ----------------------------------------------------------------------


@dataclass(frozen=True)
class Metric:
    """A metric's function and which way is better.

    ``direction`` is ``maximize``, ``minimize`` or ``target`` (closer to ``target`` is
    better, e.g. a 90% promise should be kept 90% of the time, not more or less).
    Ranking metrics (``hr_10``, ``ndcg_10``) take one argument, the 0-based ranks.
    """

    fn: Callable[..., float]
    direction: Direction
    target: float | None = None


METRICS: dict[str, Metric] = {
    "roc_auc": Metric(roc_auc, "maximize"),
    "pr_auc": Metric(pr_auc, "maximize"),
    "recall_at_1pct_fpr": Metric(partial(recall_at_fpr, max_fpr=0.01), "maximize"),
    "brier": Metric(brier, "minimize"),
    "ece": Metric(ece, "minimize"),
    "lift_top_decile": Metric(lift_top_decile, "maximize"),
    "mae_days": Metric(mae, "minimize"),
    "pinball_0_5": Metric(partial(pinball, q=0.5), "minimize"),
    "pinball_0_9": Metric(partial(pinball, q=0.9), "minimize"),
    "coverage_0_9": Metric(coverage, "target", target=0.9),
    "hr_10": Metric(partial(hit_rate, k=10), "maximize"),
    "ndcg_10": Metric(partial(ndcg, k=10), "maximize"),
}


def get(name: str) -> Metric:
    """The registered metric ``name``; the error lists the known names."""
    try:
        return METRICS[name]
    except KeyError:
        raise KeyError(f"unknown metric {name!r}; known: {', '.join(sorted(METRICS))}") from None


def score(name: str, *args, **kwargs) -> float:
    """Apply the registered metric ``name``."""
    return get(name).fn(*args, **kwargs)


def direction(name: str) -> Direction:
    """``maximize``, ``minimize`` or ``target`` for a registered metric."""
    return get(name).direction


def better(name: str, new: float, old: float) -> bool:
    """True when ``new`` is strictly better than ``old`` under metric ``name``.

    NaN is never better than anything, and anything finite beats a NaN.
    """
    if new is None or (isinstance(new, float) and math.isnan(new)):
        return False
    if old is None or (isinstance(old, float) and math.isnan(old)):
        return True
    m = get(name)
    if m.direction == "maximize":
        return new > old
    if m.direction == "minimize":
        return new < old
    return abs(new - m.target) < abs(old - m.target)
