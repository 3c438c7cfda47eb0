"""The plain-language summary that opens every report, computed from the explained sample.

Nothing here is written by hand per model: for each of the most important features (by
mean |SHAP|) the sample is split into two groups on that feature — the two values of a
flag, or the split (at a sample quantile or, for counts, an integer) that separates the
average score most while keeping at least 10 % of rows on each side — and the average
score of the two groups is compared. Probability-like scores are compared as a ratio
("2.3x the churn risk"), scores with a unit as a difference ("+1.4 days"). These are
associations in the sample, and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ppx.explain.labels import (
    article,
    entity,
    feature_label,
    format_value,
    score_label,
    score_unit,
)
from ppx.explain.shapley import ShapResult

MIN_GROUP_SHARE = 0.10


@dataclass
class GroupContrast:
    """One feature's split of the sample and the average score on each side."""

    feature: str
    condition: str  # e.g. "late deliveries 90d of 2 or more"
    share: float  # share of rows in the highlighted group
    score_in: float
    score_out: float
    ratio: float | None
    difference: float


def _candidate_thresholds(x: np.ndarray) -> list[float]:
    uniq = np.unique(x)
    if len(uniq) <= 12:
        return [float(u) for u in uniq[1:]]
    qs = np.quantile(x, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    if np.all(np.equal(np.mod(x, 1), 0)):  # counts: split at whole numbers ("2 or more")
        qs = np.ceil(qs)
    return sorted({float(q) for q in qs if q > uniq[0]})


def contrast(x: np.ndarray, scores: np.ndarray, sign: float) -> tuple[float, np.ndarray] | None:
    """The threshold t whose split ``x >= t`` (or ``x < t`` when sign < 0) separates scores most."""
    best: tuple[float, float, np.ndarray] | None = None
    n = len(x)
    for t in _candidate_thresholds(x):
        high = x >= t
        group = high if sign >= 0 else ~high
        k = int(group.sum())
        if k < MIN_GROUP_SHARE * n or n - k < MIN_GROUP_SHARE * n:
            continue
        gap = abs(scores[group].mean() - scores[~group].mean())
        if best is None or gap > best[0]:
            best = (gap, t, group)
    if best is None:
        return None
    return best[1], best[2]


def _condition(name: str, x: np.ndarray, t: float, sign: float, label: str) -> str:
    uniq = np.unique(x)
    is_int = np.all(np.equal(np.mod(x, 1), 0))
    if len(uniq) == 2 and set(uniq.tolist()) <= {0.0, 1.0}:
        return f"{label} = 1" if sign >= 0 else f"{label} = 0"
    if sign >= 0:
        if is_int:
            return f"{label} of {format_value(t)} or more"
        return f"{label} of at least {format_value(t)}"
    if is_int:
        return f"{label} of {format_value(t - 1)} or less"
    return f"{label} below {format_value(t)}"


def feature_contrasts(result: ShapResult, model: object, top: int = 3) -> list[GroupContrast]:
    """Group contrasts for the ``top`` most important features (those that can be split)."""
    labels = getattr(model, "feature_labels", None) or {}
    direction = result.direction()
    out = []
    for name in result.importance().index[: top * 2]:
        x = result.shown()[name].to_numpy(dtype=np.float64)
        sign = float(direction[name]) or 1.0
        label = labels.get(name) or feature_label(name)
        if is_categorical(name, model) and len(np.unique(x)) > 2:
            found = category_contrast(x, result.scores)
            if found is None:
                continue
            value, group = found
            condition = f"{label} = {format_value(value)}"
        else:
            # Highlight the group with the higher score so ratios read "N x the risk".
            found = contrast(x, result.scores, sign)
            if found is None:
                continue
            t, group = found
            condition = None
        s_in = float(result.scores[group].mean())
        s_out = float(result.scores[~group].mean())
        if s_in < s_out:  # the association runs against the SHAP sign in this sample
            if condition is not None:  # a category scoring lower than the rest
                condition = condition.replace(" = ", " other than ", 1)
            sign = -sign
            group = ~group
            s_in, s_out = s_out, s_in
        if abs(s_in - s_out) <= 1e-9 * max(1.0, abs(s_out)):
            continue  # no real difference: not worth a sentence
        ratio = s_in / s_out if s_out > 0 and s_in >= 0 else None
        out.append(
            GroupContrast(
                feature=name,
                condition=condition or _condition(name, x, t, sign, label),
                share=float(group.mean()),
                score_in=s_in,
                score_out=s_out,
                ratio=ratio,
                difference=s_in - s_out,
            )
        )
        if len(out) == top:
            break
    return out


def is_categorical(name: str, model: object) -> bool:
    """Integer codes of a category (``*_code`` columns, or the model's ``categorical_features``)."""
    return name.endswith("_code") or name in (getattr(model, "categorical_features", None) or ())


def category_contrast(x: np.ndarray, scores: np.ndarray) -> tuple[float, np.ndarray] | None:
    """The category whose rows' average score differs most from the rest (>= 10 % each side)."""
    best = None
    n = len(x)
    for v in np.unique(x):
        group = x == v
        k = int(group.sum())
        if k < MIN_GROUP_SHARE * n or n - k < MIN_GROUP_SHARE * n:
            continue
        gap = abs(scores[group].mean() - scores[~group].mean())
        if best is None or gap > best[0]:
            best = (gap, float(v), group)
    return None if best is None else (best[1], best[2])


def is_probability(scores: np.ndarray) -> bool:
    return bool(len(scores)) and float(np.min(scores)) >= 0.0 and float(np.max(scores)) <= 1.0


def plain_summary(result: ShapResult, model: object, model_name: str = "") -> list[str]:
    """Sentences for the top of the report, every number computed from ``result``."""
    what = score_label(model, model_name)
    unit = score_unit(model, model_name)
    ent = entity(model, model_name)
    labels = getattr(model, "feature_labels", None) or {}
    imp = result.importance()
    total = float(imp.sum()) or 1.0
    top = list(imp.index[:3])
    top_share = float(imp.iloc[:3].sum()) / total
    top_words = ", ".join(labels.get(f) or feature_label(f) for f in top[:-1])
    top_words = (
        f"{top_words} and {labels.get(top[-1]) or feature_label(top[-1])}"
        if len(top) > 1
        else feature_label(top[0])
    )
    u = f" {unit}" if unit else ""
    sentences = [
        f"Across {len(result.scores):,} {ent}, the model's {what} averages "
        f"{format_value(np.mean(result.scores))}{u} (middle half between "
        f"{format_value(np.quantile(result.scores, 0.25))} and "
        f"{format_value(np.quantile(result.scores, 0.75))}{u}).",
        f"The features that move it most are {top_words}: together they account for "
        f"{top_share:.0%} of the total attribution.",
    ]
    if float(np.std(result.scores)) <= 1e-9 * max(1.0, abs(float(np.mean(result.scores)))):
        sentences.append(
            f"The model gives practically the same {what} to every one of these {ent}, so no "
            "feature separates them: check the model before reading the plots."
        )
        return sentences
    prob = is_probability(result.scores) and not unit
    for c in feature_contrasts(result, model):
        share = f"{c.share:.0%} of the sample"
        if prob and c.ratio is not None and np.isfinite(c.ratio):
            sentences.append(
                f"{ent.capitalize()} with {c.condition} ({share}) have {c.ratio:.1f}x the "
                f"{what} of the others ({format_value(c.score_in)} vs {format_value(c.score_out)})."
            )
        else:
            sentences.append(
                f"{ent.capitalize()} with {c.condition} ({share}) have {article(what)} {what} "
                f"{format_value(c.difference)}{u} higher than the others "
                f"({format_value(c.score_in)} vs {format_value(c.score_out)}{u})."
            )
    return sentences


def importance_table(result: ShapResult, model: object, top: int = 15) -> pd.DataFrame:
    """Feature, readable label, mean |SHAP|, share of the total and direction of effect."""
    labels = getattr(model, "feature_labels", None) or {}
    imp = result.importance()
    direction = result.direction()
    rows = []
    for name in imp.index[:top]:
        d = direction[name]
        rows.append(
            {
                "feature": name,
                "label": labels.get(name) or feature_label(name),
                "mean_abs_shap": float(imp[name]),
                "share": float(imp[name] / (imp.sum() or 1.0)),
                "higher_value": "raises score" if d > 0 else "lowers score" if d < 0 else "mixed",
            }
        )
    return pd.DataFrame(rows)
