"""Words for product teams: what each model's score means and how to print a feature.

A model object may override the defaults with optional attributes (none are required by
the ExplainableModel protocol): ``score_name`` ("churn risk"), ``score_unit`` ("days"),
``entity`` ("subscribers"), ``feature_labels`` ({column: "readable label"}) and
``display_values(X) -> DataFrame`` (the feature rows in human units, e.g. undoing a
standardisation, used for the sentences, plot axes and worked examples).
"""

from __future__ import annotations

import math

#: words for a score of no registered model
DEFAULT_WORDS = ("model score", "", "rows")


def score_words(model_name: str) -> tuple[str, str, str]:
    """(what the headline score is, its unit, what one explained row is), from the spec."""
    from ppx.models import registry

    if model_name in registry.names():
        return registry.get(model_name).score_words
    return DEFAULT_WORDS


def score_label(model: object, model_name: str = "") -> str:
    name = getattr(model, "score_name", None)
    if isinstance(name, str) and name:
        return name
    return score_words(model_name)[0]


def score_unit(model: object, model_name: str = "") -> str:
    unit = getattr(model, "score_unit", None)
    if isinstance(unit, str):
        return unit
    return score_words(model_name)[1]


def entity(model: object, model_name: str = "") -> str:
    ent = getattr(model, "entity", None)
    if isinstance(ent, str) and ent:
        return ent
    return score_words(model_name)[2]


def feature_label(name: str) -> str:
    """``late_deliveries_90d`` -> ``late deliveries 90d``."""
    return name.replace("__", " ").replace("_", " ").strip()


def format_value(v: float) -> str:
    """Short, human number: integers without decimals, others to 3 significant digits."""
    v = float(v)
    if math.isnan(v):
        return "missing"
    if v == int(v) and abs(v) < 1e9:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def article(word: str) -> str:
    """``a`` or ``an`` before ``word`` (by its first letter; good enough for our labels)."""
    return "an" if word[:1].lower() in "aeiou" else "a"
