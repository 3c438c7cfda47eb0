"""One story from attributions to words: the report's sentences and tables and the API's
reason codes are all written here, from the same field-level attributions and labels.

Attributions of model inputs are summed onto the original fields of the model's
:class:`~ppx.explain.dictionary.FeatureDictionary` (a one-hot group, a log and its
"missing" flag become one field, shown with its original value). Every effect is then
said in the model's output units — probability points for probabilities (churn, fraud),
days for delivery ("lengthens / shortens the promise"), score points for recs — with the
horizon or target the score refers to. Directions are computed from the attributions
(:func:`field_direction`), never written by hand, so a sentence and a table row about the
same field cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ppx.explain.dictionary import FeatureDictionary, for_model, is_text
from ppx.explain.shapley import ShapResult

#: share of rows in each of the two groups a numeric field's sentence compares
TAIL = 0.25
MIN_ROWS = 5


@dataclass(frozen=True)
class Units:
    """How the score and its changes are said."""

    score: str  # "churn risk"
    target: str  # "of cancelling within 30 days"
    unit: str  # "points", "days", ""
    scale: float  # score -> unit (100 for probabilities)
    up: str  # verb for a positive contribution ("raises the churn risk")
    down: str  # verb for a negative one
    percent: bool  # show scores as percentages

    def amount(self, delta: float) -> str:
        """A change of the score in the model's units: ``4.1 points``, ``0.6 days``."""
        v = abs(float(delta)) * self.scale
        text = f"{v:.1f}" if v >= 0.95 or v == 0 else f"{v:.2f}"
        return f"{text} {self.unit}".strip()

    def signed(self, delta: float) -> str:
        return ("+" if delta >= 0 else "-") + self.amount(delta)

    def verb(self, delta: float) -> str:
        return self.up if delta > 0 else self.down if delta < 0 else "does not change the score"

    def score_text(self, value: float) -> str:
        if self.percent:
            return f"{value:.1%}"
        suffix = f" {self.unit}" if self.unit and self.unit != "score points" else ""
        return f"{value:.2f}{suffix}"

    def headline(self) -> str:
        """``churn risk (of cancelling within 30 days)``."""
        return f"{self.score} ({self.target})" if self.target else self.score


def units_for(model: object, model_name: str, scores: np.ndarray | None = None) -> Units:
    """The model's units from its spec (and, for churn, the model's first horizon)."""
    from ppx.explain.labels import score_words
    from ppx.models import registry

    what, unit, _entity = score_words(model_name)
    what = getattr(model, "score_name", None) or what
    target = registry.get(model_name).horizon if model_name in registry.names() else ""
    horizons = getattr(model, "horizons", None)
    info = getattr(model, "info", None) or {}
    if getattr(model, "mode", None) == "table":  # a customer table's own yes/no column
        label = (info.get("target_info") or {}).get("positive_label")
        column = info.get("target")
        target = f"{column} = {label}" if column and label is not None else ""
    elif horizons and int(horizons[0]) > 0 and "days" in target:
        target = f"of cancelling within {int(horizons[0])} days"  # the model's first horizon
    if unit == "days":
        return Units(
            what, target, "days", 1.0, "lengthens the promise", "shortens the promise", False
        )
    prob = scores is None or (len(scores) and np.nanmin(scores) >= 0 and np.nanmax(scores) <= 1)
    if not unit and prob and model_name != "recs":
        return Units(
            what, target, "points", 100.0, f"raises the {what}", f"lowers the {what}", True
        )
    return Units(
        what, target, unit or "score points", 1.0, f"raises the {what}", f"lowers the {what}", False
    )


@dataclass
class FieldResult:
    """Attributions and values of the explained rows, one column per original field."""

    fields: list[str]
    values: np.ndarray  # (rows, fields): summed attributions, in score units
    originals: pd.DataFrame  # original values (floats or category names)
    scores: np.ndarray
    bases: np.ndarray
    dictionary: FeatureDictionary
    units: Units

    def label(self, f: str) -> str:
        return self.dictionary.fields[f].label

    def kind(self, f: str) -> str:
        return self.dictionary.fields[f].kind

    def importance(self) -> pd.Series:
        imp = pd.Series(np.abs(self.values).mean(axis=0), index=self.fields)
        return imp.sort_values(ascending=False, kind="stable")

    def as_shap(self, base: ShapResult) -> ShapResult:
        """The same numbers as a ShapResult over fields, in the model's units (plots)."""
        k = self.units.scale
        return ShapResult(
            values=self.values * k,
            base_value=base.base_value * k,
            base_values=None if base.base_values is None else base.base_values * k,
            data=self.dictionary.numeric_originals(self.originals),
            scores=self.scores * k,
            feature_names=self.fields,
            method=base.method,
            seconds=base.seconds,
            background_rows=base.background_rows,
        )


def group(result: ShapResult, model: object, model_name: str) -> FieldResult:
    """Sum a ShapResult's attributions onto fields and recover the original values."""
    d = for_model(model, model_name)
    fields, G = d.grouping(list(result.feature_names))
    return FieldResult(
        fields=fields,
        values=result.values @ G,
        originals=d.originals(model, result.data),
        scores=result.scores,
        bases=result.bases(),
        dictionary=d,
        units=units_for(model, model_name, result.scores),
    )


# --- directions ------------------------------------------------------------------------


@dataclass(frozen=True)
class Direction:
    """How a field's value moves the score, computed from its attributions.

    For a number or flag: the mean attribution of the rows with the highest values
    (``high``) against the lowest (``low``); ``sign`` is +1 when higher values raise the
    score. For a category: the category with the largest and the smallest mean
    attribution.
    """

    field: str
    sign: int
    high_label: str  # "2 or more", "yes", "SwiftPost"
    high_effect: float
    low_label: str
    low_effect: float
    categorical: bool


def _split(x: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    uniq = np.unique(x[~np.isnan(x)])
    if len(uniq) < 2:
        return None
    if len(uniq) <= 2:
        return x == uniq[-1], x == uniq[0]
    lo, hi = np.nanquantile(x, [TAIL, 1 - TAIL])
    high, low = x >= hi, x <= lo
    if hi <= lo or high.sum() < MIN_ROWS or low.sum() < MIN_ROWS:
        high, low = x > np.nanmedian(x), x <= np.nanmedian(x)
    if high.sum() == 0 or low.sum() == 0:
        return None
    return high, low


def field_direction(fr: FieldResult, f: str) -> Direction | None:
    """The direction of one field (None when its value never varies in the sample)."""
    j = fr.fields.index(f)
    v = fr.values[:, j]
    spec = fr.dictionary.fields[f]
    x = fr.originals[f]
    if is_text(x):
        means = pd.Series(v).groupby(x.to_numpy()).mean()
        counts = pd.Series(v).groupby(x.to_numpy()).size()
        means = means[counts >= min(MIN_ROWS, int(counts.max()))]
        if len(means) < 2:
            return None
        hi, lo = means.idxmax(), means.idxmin()
        return Direction(f, 1, str(hi), float(means[hi]), str(lo), float(means[lo]), True)
    xv = x.to_numpy(dtype=np.float64)
    split = _split(xv)
    if split is None:
        return None
    high, low = split
    eh, el = float(v[high].mean()), float(v[low].mean())
    if spec.kind == "flag":
        hl, ll = "yes", "no"
    else:
        lo_top, hi_low = float(np.nanmax(xv[low])), float(np.nanmin(xv[high]))
        ll = spec.show_value(lo_top) + ("" if lo_top <= np.nanmin(xv) else " or less")
        hl = spec.show_value(hi_low) + ("" if hi_low >= np.nanmax(xv) else " or more")
    sign = 1 if eh > el else -1 if eh < el else 0
    return Direction(f, sign, hl, eh, ll, el, False)


def direction_cell(d: Direction | None, u: Units) -> str:
    """The table's direction column: the same verb as the sentence."""
    if d is None:
        return "does not vary in this sample"
    if d.categorical:
        return f"{d.high_label}: {u.verb(d.high_effect)}; {d.low_label}: {u.verb(d.low_effect)}"
    if d.sign == 0:
        return "no clear direction"
    return f"higher {u.verb(d.sign)}" if d.high_label != "yes" else f"yes {u.verb(d.sign)}"


def sentence(fr: FieldResult, d: Direction) -> str:
    """One finding: what the field does to the score, in the model's units."""
    u = fr.units
    label = fr.label(d.field)
    if d.categorical:
        return (
            f"{label[:1].upper()}{label[1:]}: {d.high_label} {u.verb(d.high_effect)} most "
            f"({u.signed(d.high_effect)} on average), {d.low_label} "
            f"{u.verb(d.low_effect)} most ({u.signed(d.low_effect)})."
        )
    if d.high_label == "yes":
        return (
            f"When {label} is yes the model {u.verb(d.sign) if d.sign else 'keeps the score'}: "
            f"{u.signed(d.high_effect)} on average, against {u.signed(d.low_effect)} when it "
            "is no."
        )
    return (
        f"Higher {label} {u.verb(d.sign) if d.sign else 'does not change the score'}: "
        f"at {d.high_label} it adds {u.signed(d.high_effect)} on average, "
        f"at {d.low_label} {u.signed(d.low_effect)}."
    )


# --- the report's words ----------------------------------------------------------------


def summary_sentences(fr: FieldResult, entity: str, top: int = 4) -> list[str]:
    """The report's opening sentences, every number from ``fr``."""
    u = fr.units
    imp = fr.importance()
    total = float(imp.sum()) or 1.0
    lead = [fr.label(f) for f in imp.index[:3]]
    lead_words = lead[0] if len(lead) == 1 else ", ".join(lead[:-1]) + f" and {lead[-1]}"
    out = [
        f"Across {len(fr.scores):,} {entity}, the {u.headline()} averages "
        f"{u.score_text(float(np.mean(fr.scores)))} (middle half between "
        f"{u.score_text(float(np.quantile(fr.scores, 0.25)))} and "
        f"{u.score_text(float(np.quantile(fr.scores, 0.75)))}).",
        f"What moves it most: {lead_words} (together {float(imp.iloc[:3].sum()) / total:.0%} "
        "of all the attribution).",
    ]
    if float(np.std(fr.scores)) <= 1e-9 * max(1.0, abs(float(np.mean(fr.scores)))):
        out.append(
            f"The model gives practically the same {u.score} to every one of these {entity}: "
            "check the model before reading the rest."
        )
        return out
    for d in findings(fr, top):
        out.append(sentence(fr, d))
    return out


def findings(fr: FieldResult, top: int) -> list[Direction]:
    """Directions of the ``top`` most important fields that vary in the sample."""
    out = []
    for f in fr.importance().index:
        d = field_direction(fr, f)
        if d is not None and (d.sign != 0 or d.categorical):
            out.append(d)
        if len(out) == top:
            break
    return out


def importance_rows(fr: FieldResult, top: int = 15) -> pd.DataFrame:
    """The report's table: label, share, average effect in units and the direction."""
    imp = fr.importance()
    total = float(imp.sum()) or 1.0
    rows = []
    for f in imp.index[:top]:
        d = field_direction(fr, f)
        rows.append(
            {
                "field": f,
                "what": fr.label(f),
                "share of attribution": f"{imp[f] / total:.0%}",
                "average effect": fr.units.amount(float(imp[f])),
                "direction": direction_cell(d, fr.units),
            }
        )
    return pd.DataFrame(rows)


def row_reasons(fr: FieldResult, row: int, k: int = 3) -> list[str]:
    """The top ``k`` reasons of one explained row, worded as the API words them."""
    contrib = fr.values[row]
    order = np.argsort(-np.abs(contrib), kind="stable")[:k]
    return [
        reason_text(
            fr.dictionary, fr.fields[j], fr.originals.iloc[row][fr.fields[j]], contrib[j], fr.units
        )
        for j in order
    ]


def reason_text(d: FeatureDictionary, f: str, value, contribution: float, u: Units) -> str:
    """``late deliveries in the last 2 months: 2 — raises the churn risk by 4.1 points``."""
    return f"{d.fields[f].describe(value)} — {u.verb(contribution)} by {u.amount(contribution)}"


def segment_rows(fr: FieldResult, entity: str, top: int = 3) -> pd.DataFrame:
    """Top drivers inside each segment the dictionary names (tiers, carriers, new vs old)."""
    rows = []
    for seg in fr.dictionary.segments:
        if seg not in fr.fields:
            continue
        spec = fr.dictionary.fields[seg]
        col = fr.originals[seg]
        values = col if is_text(col) else col.map(spec.show_value)
        for value, idx in pd.Series(range(len(col))).groupby(values.to_numpy()):
            idx = idx.to_numpy()
            if len(idx) < MIN_ROWS:
                continue
            sub = fr.values[idx]
            imp = np.abs(sub).mean(axis=0)
            lead = np.argsort(-imp, kind="stable")[:top]
            rows.append(
                {
                    "segment": spec.describe(value),
                    entity: f"{len(idx):,}",
                    f"average {fr.units.score}": fr.units.score_text(float(fr.scores[idx].mean())),
                    "top drivers (average effect in the segment)": "; ".join(
                        f"{fr.label(fr.fields[j])} {fr.units.signed(float(sub[:, j].mean()))}"
                        for j in lead
                    ),
                }
            )
    return pd.DataFrame(rows)
