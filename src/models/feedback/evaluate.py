"""Feedback metrics: theme recovery against planted truth, sentiment on a time holdout."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.feedback.discover import NOISE_LABEL
from ppx.feedback.themes import NOISE


def best_match(truth: np.ndarray, labels: np.ndarray) -> pd.DataFrame:
    """Per planted theme, the discovered cluster with the best F1, and its P / R / F1.

    ``truth`` holds planted theme names (``none`` for no theme); ``labels`` cluster ids
    (``NOISE_LABEL`` for unassigned). Several planted themes may pick the same cluster —
    that is the point: a merged cluster loses precision for both.
    """
    truth, labels = np.asarray(truth, dtype=object), np.asarray(labels)
    clusters = [c for c in np.unique(labels) if c != NOISE_LABEL]
    rows = []
    for theme in sorted(set(truth) - {NOISE, None}):
        t = truth == theme
        best = (0.0, 0.0, 0.0, NOISE_LABEL)
        for c in clusters:
            lab = labels == c
            tp = int((t & lab).sum())
            if tp == 0:
                continue
            p, r = tp / lab.sum(), tp / t.sum()
            f = 2 * p * r / (p + r)
            if f > best[0]:
                best = (f, p, r, int(c))
        rows.append(
            {
                "theme": theme,
                "cluster": best[3],
                "precision": best[1],
                "recall": best[2],
                "f1": best[0],
                "texts": int(t.sum()),
            }
        )
    return pd.DataFrame(rows)


def theme_scores(truth: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """ARI over all texts and over themed texts, mean best-match P / R / F1."""
    from sklearn.metrics import adjusted_rand_score

    truth = np.asarray(truth, dtype=object)
    labels = np.asarray(labels)
    themed = truth != NOISE
    bm = best_match(truth, labels)
    return {
        "ari": float(adjusted_rand_score(truth.astype(str), labels)),
        "ari_themed": float(adjusted_rand_score(truth[themed].astype(str), labels[themed])),
        "precision": float(bm["precision"].mean()),
        "recall": float(bm["recall"].mean()),
        "f1": float(bm["f1"].mean()),
        "unassigned": float((labels == NOISE_LABEL).mean()),
    }


def sentiment_auc(p_positive: np.ndarray, rating: np.ndarray) -> float:
    """ROC AUC of p(positive) for "rating >= 4" among reviews rated 1-2 or 4-5."""
    from sklearn.metrics import roc_auc_score

    rating = np.asarray(rating, dtype=float)
    keep = np.isfinite(rating) & (rating != 3)
    y = rating[keep] >= 4
    if y.all() or not y.any():
        return float("nan")
    return float(roc_auc_score(y, np.asarray(p_positive)[keep]))
