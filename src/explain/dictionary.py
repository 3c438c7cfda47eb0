"""Feature dictionaries: what every model input means, in words and units a person reads.

A model sees inputs such as ``log_distance`` (standardised), ``carrier_code`` or a one-hot
column ``reason_damaged``; a product team wants "distance from the warehouse: 820 km",
"carrier: SwiftPost", "return reason: damaged". A :class:`FeatureDictionary` maps every
model input (a *column*) onto an original *field* with a plain label, a unit and a way to
show its value, and says how the column was made from the field:

* ``identity`` — the field's value itself;
* ``log1p`` / ``log`` — ``log(1 + x)`` / ``log(x)`` of the field (shown as ``x``);
* ``ratio`` — ``log`` of a ratio (shown as the ratio, "1.3x");
* ``code`` — an integer code of a category (shown as the category's name, decoded with the
  model's vocabulary);
* ``onehot`` — one column of a one-hot group (the group is one field whose value is the
  category of the column that is set);
* ``missing`` — a flag saying the field's value was not known (the field then shows
  "missing").

Several columns may map onto one field (a one-hot group, a value and its "missing"
flag); their SHAP attributions are summed onto the field, so one finding is told once,
under one name, with the original value. Standardised inputs are undone first by the
model's own ``unscale`` hook (mean and standard deviation live in the fitted model).

Models declare their dictionary in ``ppx.models.<name>.features_doc`` and name it on
their spec (``ModelSpec.features``); tables brought by users get one from their column
names (:func:`table_dictionary`), overridable with a small YAML file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: how a column was made from its field
TRANSFORMS = ("identity", "log1p", "log", "ratio", "code", "onehot", "missing")
#: how a field's value is shown
KINDS = ("number", "count", "flag", "category", "share", "money", "ratio")


@dataclass(frozen=True)
class Field:
    """One original fact about a decision, as a person names it.

    Attributes:
        name: identifier of the field (a request or table column, or a derived fact).
        label: plain words ("distance from the warehouse").
        unit: written after the number ("km", "days"); empty for counts and categories.
        kind: how the value is shown (see ``KINDS``): ``flag`` as yes/no, ``share`` as a
            percentage, ``money`` with two decimals, ``ratio`` as "1.3x".
        decimals: decimals shown for ``number`` (None: three significant digits).
    """

    name: str
    label: str
    unit: str = ""
    kind: str = "number"
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"field {self.name}: kind {self.kind!r} is not one of {KINDS}")

    def show_value(self, value: Any) -> str:
        """The value alone, in the field's unit: ``820 km``, ``2``, ``SwiftPost``, ``yes``."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "missing"
        if self.kind == "category" or isinstance(value, str):
            return str(value)
        v = float(value)
        if self.kind == "flag":
            return "yes" if v >= 0.5 else "no"
        if self.kind == "share":
            return f"{v:.0%}"
        if self.kind == "ratio":
            return f"{v:.2g}x"
        if self.kind == "count":
            text = f"{round(v):,}"
        elif self.kind == "money":
            text = f"{v:,.2f}"
        elif self.decimals is not None:
            text = f"{v:,.{self.decimals}f}"
        else:
            text = number(v)
        return f"{text} {self.unit}" if self.unit else text

    def describe(self, value: Any) -> str:
        """Label and value: ``distance from the warehouse: 820 km``."""
        return f"{self.label}: {self.show_value(value)}"


def is_text(values: pd.Series) -> bool:
    """True for a column of category names (object, string or categorical dtype)."""
    return not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values))


def number(v: float) -> str:
    """Three significant digits, thousands separated, no trailing zeros."""
    if v == int(v) and abs(v) < 1e9:
        return f"{int(v):,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


@dataclass(frozen=True)
class Column:
    """How one model input was made from its field."""

    feature: str
    field: str
    transform: str = "identity"
    category: str | None = None  # onehot: the category this column stands for

    def __post_init__(self) -> None:
        if self.transform not in TRANSFORMS:
            raise ValueError(f"column {self.feature}: transform {self.transform!r} unknown")
        if self.transform == "onehot" and self.category is None:
            raise ValueError(f"one-hot column {self.feature} needs its category")


#: ``(model, A, input names) -> A`` undoing the model's scaling of the input matrix;
#: ``(model, field) -> categories``
Unscale = Callable[[Any, np.ndarray, list[str]], np.ndarray]
Decode = Callable[[Any, str], list[str]]


@dataclass(frozen=True)
class FeatureDictionary:
    """Fields, and the columns of a model mapped onto them (see the module docstring).

    Attributes:
        fields: field name -> :class:`Field`, in the order reports list them.
        columns: model input name -> :class:`Column`.
        unscale: optional ``(model, A, names) -> A``: the input matrix before the model's
            own scaling.
        decode: optional ``(model, field) -> categories``: names of the integer codes of a
            ``code`` column (index = code).
        segments: fields the report splits the explained rows by (tiers, carriers...),
            each with optional numeric cut points: ``{"tenure_days": (90,)}``.
    """

    fields: Mapping[str, Field]
    columns: Mapping[str, Column]
    unscale: Unscale | None = None
    decode: Decode | None = None
    segments: Mapping[str, tuple[float, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted({c.field for c in self.columns.values()} - set(self.fields))
        if unknown:
            raise ValueError(f"columns map onto undeclared field(s) {unknown[:8]}")

    # --- coverage --------------------------------------------------------------------
    def missing(self, feature_names: Iterable[str]) -> list[str]:
        """Model inputs this dictionary does not explain."""
        return [f for f in feature_names if f not in self.columns]

    def covering(self, feature_names: Iterable[str]) -> FeatureDictionary:
        """This dictionary, completed for inputs it lacks with labels from their names.

        Why not fail: a served model must answer even when a new input was added without
        its words; the tests fail instead (:meth:`missing` must be empty for every
        registered model).
        """
        names = list(feature_names)
        absent = self.missing(names)
        if not absent:
            return self
        extra = table_dictionary(absent)
        return replace(
            self,
            fields={
                **self.fields,
                **{k: v for k, v in extra.fields.items() if k not in self.fields},
            },
            columns={**self.columns, **extra.columns},
        )

    # --- the grouping matrix -----------------------------------------------------------
    def field_names(self, feature_names: list[str]) -> list[str]:
        """Fields that the given inputs map onto, in dictionary order."""
        used = {self.columns[f].field for f in feature_names}
        return [name for name in self.fields if name in used]

    def grouping(self, feature_names: list[str]) -> tuple[list[str], np.ndarray]:
        """(fields, matrix G of shape (inputs, fields)): ``attributions @ G`` sums groups."""
        fields = self.field_names(feature_names)
        index = {name: j for j, name in enumerate(fields)}
        G = np.zeros((len(feature_names), len(fields)))
        for i, f in enumerate(feature_names):
            G[i, index[self.columns[f].field]] = 1.0
        return fields, G

    # --- original values ---------------------------------------------------------------
    def originals(self, model: Any, X: pd.DataFrame) -> pd.DataFrame:
        """Model inputs -> one column per field holding the ORIGINAL value.

        Numbers come back as floats (logs and scaling undone), categories as their names.
        """
        names = list(X.columns)
        out = self.original_arrays(model, X.to_numpy(dtype=np.float64), names)
        return pd.DataFrame(out, index=range(len(X)))

    def original_arrays(self, model: Any, A: np.ndarray, names: list[str]) -> dict[str, Any]:
        """The numpy core of :meth:`originals` (the API's fast path calls it per request)."""
        if self.unscale is not None:
            A = self.unscale(model, A, names)
        out: dict[str, Any] = {}
        for fname, transform, idx, extra in self._plan(tuple(names)):
            if transform == "onehot":
                M = A[:, idx]
                cats = np.array([*extra, "other"], dtype=object)
                pick = np.where(M.max(axis=1) > 0.5, M.argmax(axis=1), len(extra))
                out[fname] = cats[pick]
                continue
            x = A[:, idx[0]]
            if transform == "log1p":
                value: Any = np.expm1(x)
            elif transform in ("log", "ratio"):
                value = np.exp(x)
            elif transform == "code":
                cats = self.decode(model, fname) if self.decode is not None else []
                codes = np.rint(x).astype(np.int64)
                value = np.array(
                    [cats[c] if 0 <= c < len(cats) else f"code {c}" for c in codes], dtype=object
                )
            elif transform == "missing":
                value = (x > 0.5).astype(np.float64)
            else:
                value = x
            for j in extra:  # "missing" flags of this field
                value = np.where(A[:, j] > 0.5, np.nan, value)
            out[fname] = value
        return {f: out[f] for f in self._field_order(tuple(names))}

    def _field_order(self, names: tuple[str, ...]) -> list[str]:
        """:meth:`field_names`, cached per input order (the per-request path asks each time)."""
        cache = self.__dict__.setdefault("_field_orders", {})
        if names not in cache:
            cache[names] = self.field_names(list(names))
        return cache[names]

    def _plan(self, names: tuple[str, ...]) -> list[tuple[str, str, list[int], Any]]:
        """Per field: (field, transform, input positions, categories or flag positions).

        The first input of a field carries its value; "missing" flags blank it; one-hot
        columns are read together. Cached per input order.
        """
        cache = self.__dict__.setdefault("_plans", {})
        if names in cache:
            return cache[names]
        first: dict[str, tuple[str, int]] = {}
        flags: dict[str, list[int]] = {}
        onehot: dict[str, list[tuple[int, str]]] = {}
        for i, f in enumerate(names):
            col = self.columns[f]
            if col.transform == "onehot":
                onehot.setdefault(col.field, []).append((i, str(col.category)))
            elif col.transform == "missing":
                flags.setdefault(col.field, []).append(i)
            else:
                first.setdefault(col.field, (col.transform, i))
        plan = []
        for fname in self.field_names(list(names)):
            if fname in onehot:
                pairs = onehot[fname]
                plan.append((fname, "onehot", [i for i, _ in pairs], [c for _, c in pairs]))
            elif fname in first:
                transform, i = first[fname]
                plan.append((fname, transform, [i], flags.get(fname, [])))
            else:  # only a "missing" flag: shown as yes/no
                plan.append((fname, "missing", [flags[fname][0]], []))
        cache[names] = plan
        return plan

    def numeric_originals(self, originals: pd.DataFrame) -> pd.DataFrame:
        """Originals with categories as their order of first appearance (for plot colours)."""
        out = {}
        for c in originals.columns:
            s = originals[c]
            if is_text(s):
                out[c] = pd.factorize(s)[0].astype(np.float64)
            else:
                out[c] = s.astype(np.float64)
        return pd.DataFrame(out)

    def label(self, field_name: str) -> str:
        return self.fields[field_name].label


# --- building dictionaries -------------------------------------------------------------


def build(
    fields: Iterable[Field],
    columns: Iterable[Column | tuple],
    **kwargs: Any,
) -> FeatureDictionary:
    """A dictionary from lists; a column may be a tuple ``(feature, field, transform[, category])``."""
    cols = [c if isinstance(c, Column) else Column(*c) for c in columns]
    seen: dict[str, Field] = {}
    for f in fields:
        if f.name in seen:
            raise ValueError(f"field {f.name} declared twice")
        seen[f.name] = f
    return FeatureDictionary(seen, {c.feature: c for c in cols}, **kwargs)


def same(*fields: Field) -> list[Column]:
    """Columns that are their field itself (input name = field name)."""
    return [Column(f.name, f.name) for f in fields]


#: words of column names that read better spelled out
_WORDS = {
    "n": "number of",
    "num": "number of",
    "cnt": "count of",
    "pct": "percent",
    "avg": "average",
    "amt": "amount",
    "qty": "quantity",
    "id": "ID",
    "1m": "in the last month",
    "2m": "in the last 2 months",
    "3m": "in the last 3 months",
    "6m": "in the last 6 months",
    "12m": "in the last 12 months",
    "30d": "in the last 30 days",
    "60d": "in the last 60 days",
    "90d": "in the last 90 days",
}
#: name endings that give a unit (checked in order) -> (unit, kind)
_UNITS = (
    (("_days", "days"), ("days", "number")),
    (("_hours", "hours"), ("hours", "number")),
    (("_months", "months", "tenure"), ("months", "number")),
    (("_km",), ("km", "number")),
    (("_kg",), ("kg", "number")),
    (("_pct", "percent"), ("%", "number")),
    (("_rate", "_share", "_ratio_pct"), ("", "share")),
    (
        ("charges", "_amount", "_price", "_value", "_spend", "_usd", "_eur", "revenue"),
        ("", "money"),
    ),
    (("_count", "_n", "number", "num_"), ("", "count")),
)


def split_words(name: str) -> list[str]:
    """``TotalCharges`` / ``total_charges`` / ``total-charges`` -> ``["total", "charges"]``."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", str(name))
    return [w for w in re.split(r"[\s_\-.]+", spaced.lower()) if w]


def label_from_name(name: str) -> str:
    """A readable label from a column name: ``late_2m`` -> ``late in the last 2 months``."""
    words = [_WORDS.get(w, w) for w in split_words(name)]
    if words and words[0] == "is":  # "is_active" -> "active"
        words = words[1:] or words
    text = " ".join(words) or str(name)
    return text[:1].upper() + text[1:] if text[:1].isdigit() else text


def guess_field(name: str, values: pd.Series | None = None) -> Field:
    """A field for a user's column: label from its name, unit and kind from name and values."""
    low = str(name).lower()
    unit, kind = "", "number"
    for ends, (u, k) in _UNITS:
        if any(e in low if not e.startswith("_") else low.endswith(e) for e in ends):
            unit, kind = u, k
            break
    if values is not None:
        v = values.dropna()
        if is_text(v) or v.dtype == bool:
            kind, unit = ("flag", "") if v.dtype == bool else ("category", "")
        elif len(v) and set(pd.unique(v)) <= {0, 1}:
            kind, unit = "flag", ""
        elif kind == "share" and len(v) and float(v.max()) > 1.0:
            kind = "number"
    return Field(name=str(name), label=label_from_name(name), unit=unit, kind=kind)


def table_dictionary(
    columns: Iterable[str],
    overrides: Mapping[str, Mapping[str, Any]] | str | Path | None = None,
    frame: pd.DataFrame | None = None,
    categorical: Iterable[str] = (),
) -> FeatureDictionary:
    """A dictionary for a user's own table: labels from column names, YAML overrides.

    Args:
        columns: the model inputs (one per table column; a categorical input may be named
            ``<column>_code`` or be the column itself).
        overrides: a mapping or a YAML file ``{column: {label: ..., unit: ..., kind: ...}}``
            (any key of :class:`Field` except ``name``).
        frame: the table itself, to guess flags and categories from the values.
        categorical: inputs that hold integer codes of categories.

    Raises:
        ValueError: an override names a column the table lacks or a key Field lacks.
    """
    extra = load_overrides(overrides)
    cats = set(categorical)
    fields: list[Field] = []
    cols: list[Column] = []
    names = list(columns)
    for name in names:
        base = name[: -len("_code")] if name.endswith("_code") else name
        values = frame[base] if frame is not None and base in frame.columns else None
        f = guess_field(base, values)
        if name in cats or name.endswith("_code"):
            f = replace(f, kind="category", unit="")
        fields.append(f)
        cols.append(Column(name, base, "code" if f.kind == "category" else "identity"))
    by_name = {f.name: f for f in fields}
    for key, change in extra.items():
        if key not in by_name:
            raise ValueError(
                f"feature labels: column {key!r} is not in the table (columns: {', '.join(by_name)})"
            )
        allowed = {"label", "unit", "kind", "decimals"}
        bad = set(change) - allowed
        if bad:
            raise ValueError(
                f"feature labels: column {key!r} has unknown key(s) {sorted(bad)}; "
                f"use {sorted(allowed)}"
            )
        by_name[key] = replace(by_name[key], **dict(change))
    return build(by_name.values(), cols, decode=decode_vocab)


def decode_vocab(model: Any, field_name: str) -> list[str]:
    """Category names of a table model's codes: ``model.encoder.vocab`` (0 = unseen)."""
    encoder = getattr(model, "encoder", None)
    vocab = getattr(encoder, "vocab", None) or getattr(model, "vocab", None) or {}
    if field_name in vocab:
        return ["an unseen value", *map(str, vocab[field_name])]
    return []


def load_overrides(overrides: Mapping[str, Any] | str | Path | None) -> dict[str, dict]:
    """``{column: {label, unit, kind, decimals}}`` from a mapping or a YAML file."""
    if overrides is None:
        return {}
    if isinstance(overrides, str | Path):
        import yaml

        path = Path(overrides)
        if not path.exists():
            raise ValueError(f"feature labels file {path} does not exist")
        loaded = yaml.safe_load(path.read_text()) or {}
        where = str(path)
    else:
        loaded, where = dict(overrides), "feature labels"
    if not isinstance(loaded, Mapping):
        raise ValueError(f"{where}: expected a mapping of column -> {{label, unit, kind}}")
    out = {}
    for key, value in loaded.items():
        if isinstance(value, str):  # shorthand: ``column: plain label``
            value = {"label": value}
        if not isinstance(value, Mapping):
            raise ValueError(f"{where}: entry {key!r} must be a label or a mapping")
        out[str(key)] = dict(value)
    return out


def for_model(model: Any, model_name: str = "") -> FeatureDictionary:
    """The dictionary of a loaded model, completed for any input it lacks.

    Order: the model object's own ``feature_dictionary`` (table models build theirs from
    the table), else the registered spec's, else labels from the input names.
    """
    names = list(model.feature_names)
    own = getattr(model, "feature_dictionary", None)
    own = own() if callable(own) else own
    if isinstance(own, FeatureDictionary):
        return own.covering(names)
    from ppx.models import registry

    if model_name in registry.names():
        spec_dict = registry.get(model_name).feature_dictionary()
        if spec_dict is not None:
            return spec_dict.covering(names)
    encoder = getattr(model, "encoder", None)
    cats = getattr(model, "categorical_features", None) or getattr(encoder, "categorical", ())
    return table_dictionary(names, categorical=cats or ())
