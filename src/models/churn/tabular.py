"""Turning any customer table into model inputs: type inference, targets, leakage checks.

Users bring tables exported from billing systems and CRMs: numbers stored as text with
blanks (Telco's ``TotalCharges``), Yes/No targets, ID columns, and now and then a column
that is really the answer in disguise (a cancellation date when the target is "churned").
Everything here exists so such a table trains without hand-cleaning and so the
surprises are reported, not silently absorbed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

POSITIVE_WORDS = {"yes", "y", "true", "t", "1", "churn", "churned", "cancelled", "canceled", "left"}
NEGATIVE_WORDS = {"no", "n", "false", "f", "0", "stay", "stayed", "active", "retained"}
BLANKS = {"", " ", "na", "n/a", "nan", "null", "none", "?", "-"}
#: Single-column AUC above which a column is reported as probable leakage.
LEAKAGE_AUC = 0.97
MAX_CATEGORIES = 50


class TableError(ValueError):
    """A user table cannot be used as given; the message says which column and why."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet table, keeping text as text (blanks are handled later)."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"table file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(path)
    if suffix in (".csv", ".txt", ".tsv"):
        sep = "\t" if suffix == ".tsv" else ","
        return pd.read_csv(path, sep=sep, keep_default_na=False, dtype=str)
    raise TableError(f"{path}: unsupported table format {suffix!r}; use .csv or .parquet")


def _is_blank(s: pd.Series) -> np.ndarray:
    if s.dtype.kind in "biufcmM":
        return s.isna().to_numpy()
    txt = s.astype(str).str.strip().str.lower()
    return (s.isna() | txt.isin(BLANKS)).to_numpy()


def parse_target(s: pd.Series, name: str) -> tuple[np.ndarray, dict]:
    """A binary target from bools, 0/1 or two text labels; blanks become NaN.

    Returns the 0/1 float array (NaN where blank) and a note of how labels were read.
    Raises TableError for one class or more than two.
    """
    blank = _is_blank(s)
    vals = s[~blank]
    if len(vals) == 0:
        raise TableError(f"target column {name!r} is empty (every row is blank)")
    if vals.dtype.kind == "b":
        raw = vals.astype(bool).map({True: "True", False: "False"})
    else:
        text = vals.astype(str).str.strip()
        # "Yes" and "yes" are one label; keep the first spelling seen for messages.
        first: dict[str, str] = {}
        for t in text.unique().tolist():
            first.setdefault(t.lower(), t)
        raw = text.str.lower().map(first)
    uniq = sorted(raw.unique().tolist())
    if len(uniq) == 1:
        raise TableError(
            f"target column {name!r} has one class only ({uniq[0]!r} in all {len(raw)} "
            "non-blank rows); a churn model needs both churned and retained customers"
        )
    if len(uniq) > 2:
        shown = ", ".join(repr(u) for u in uniq[:6])
        raise TableError(
            f"target column {name!r} must be binary; found {len(uniq)} values ({shown}...)"
        )
    low = [u.lower() for u in uniq]
    try:
        num = [float(u) for u in uniq]
        positive = uniq[int(np.argmax(num))]
    except ValueError:
        pos = [u for u, lw in zip(uniq, low, strict=True) if lw in POSITIVE_WORDS]
        neg = [u for u, lw in zip(uniq, low, strict=True) if lw in NEGATIVE_WORDS]
        if len(pos) == 1:
            positive = pos[0]
        elif len(neg) == 1:
            positive = next(u for u in uniq if u != neg[0])
        else:  # the minority class is the event of interest
            positive = raw.value_counts().idxmin()
    y = np.full(len(s), np.nan)
    y[~blank] = (raw == positive).to_numpy(dtype=float)
    return y, {"positive_label": positive, "labels": uniq, "blank_rows": int(blank.sum())}


#: Frames up to this many rows (online requests) take a pure-Python path in
#: :meth:`TabularEncoder.numeric_frame`: the same values without pandas' per-call cost.
SMALL_FRAME = 64


def _text_value(v) -> str:
    """One cell as :meth:`TabularEncoder._text` reads it (``<blank>`` for blanks)."""
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "<blank>"
    t = str(v).strip()
    return "<blank>" if t.lower() in BLANKS else t


def coerce_numeric(s: pd.Series, min_share: float = 0.95) -> pd.Series | None:
    """Text that is really numbers (with blanks) -> float; None when it is not numeric."""
    if s.dtype.kind in "biuf":
        return s.astype(float)
    if s.dtype.kind == "b":
        return s.astype(float)
    blank = _is_blank(s)
    txt = s.astype(str).str.strip().str.replace(",", "", regex=False)
    num = pd.to_numeric(txt.where(~blank), errors="coerce")
    filled = (~blank).sum()
    if filled == 0:
        return None
    if num.notna().sum() / filled >= min_share:
        return num.astype(float)
    return None


@dataclass
class ColumnPlan:
    """Which columns a user table contributes and why others were left out."""

    numeric: list[str] = field(default_factory=list)
    categorical: list[str] = field(default_factory=list)
    dropped: dict[str, str] = field(default_factory=dict)
    leakage: dict[str, float] = field(default_factory=dict)


def _single_column_auc(x: np.ndarray, y: np.ndarray) -> float:
    from ppx.metrics import roc_auc

    ok = ~np.isnan(x)
    if ok.sum() < 10 or len(np.unique(y[ok])) < 2 or len(np.unique(x[ok])) < 2:
        return 0.5
    a = roc_auc(y[ok], x[ok])
    return max(a, 1 - a)


def infer_columns(
    df: pd.DataFrame,
    y: np.ndarray,
    exclude: list[str],
    force: list[str] | None = None,
) -> ColumnPlan:
    """Numeric vs categorical, ID-like columns dropped, near-perfect predictors flagged.

    A column whose values alone separate the classes (single-column ROC AUC >= 0.97,
    including its missingness pattern) is probably written after the outcome: it is
    reported in ``leakage`` and left out unless named in ``force``.
    """
    force = list(force or [])
    unknown = [c for c in force if c not in df.columns]
    if unknown:
        raise TableError(f"--force-column names unknown columns {unknown}")
    plan = ColumnPlan()
    n = len(df)
    known = ~np.isnan(y)
    for col in df.columns:
        if col in exclude:
            continue
        s = df[col]
        blank = _is_blank(s)
        if blank.all():
            plan.dropped[col] = "every value is blank"
            continue
        num = coerce_numeric(s)
        if num is not None:
            nun = num.nunique()
            # One value plus blanks still carries information (filled only for some).
            if nun <= 1 and not num.isna().any():
                plan.dropped[col] = "constant"
                continue
            x = num.to_numpy(dtype=float)
            score = _single_column_auc(x[known], y[known])
            miss = np.isnan(x)
            if miss.any() and not miss.all():
                score = max(score, _single_column_auc(miss[known].astype(float), y[known]))
            kind = "numeric"
        else:
            txt = s.astype(str).str.strip()
            nun = txt[~blank].nunique()
            if nun <= 1 and not blank.any():
                plan.dropped[col] = "constant"
                continue
            if nun > max(MAX_CATEGORIES, 0) and nun > 0.05 * n:
                plan.dropped[col] = f"text with {nun} distinct values (an ID or free text)"
                continue
            codes = txt.where(~blank, "<blank>")
            means = pd.Series(y[known]).groupby(codes[known].to_numpy()).mean()
            x = codes.map(means).to_numpy(dtype=float)
            score = _single_column_auc(x[known], y[known])
            kind = "categorical"
        if score >= LEAKAGE_AUC and col not in force:
            plan.leakage[col] = round(float(score), 4)
            continue
        (plan.numeric if kind == "numeric" else plan.categorical).append(col)
    if not plan.numeric and not plan.categorical:
        raise TableError(
            "no usable feature columns left after dropping IDs, constants and probable "
            f"leakage (dropped: {plan.dropped}, leakage: {plan.leakage})"
        )
    return plan


@dataclass
class TabularEncoder:
    """Numeric columns -> median-filled, log-compressed, standardised floats (plus
    missing flags); categorical columns -> integer codes (0 = unseen or blank)."""

    numeric: list[str]
    categorical: list[str]
    medians: dict[str, float] = field(default_factory=dict)
    means: dict[str, float] = field(default_factory=dict)
    stds: dict[str, float] = field(default_factory=dict)
    log_cols: list[str] = field(default_factory=list)
    missing_flags: list[str] = field(default_factory=list)
    vocab: dict[str, list[str]] = field(default_factory=dict)
    #: Quantile bins per numeric column for the network's wide part (0 = no bins).
    n_bins: int = 0
    bin_edges: dict[str, list[float]] = field(default_factory=dict)

    @property
    def bin_cardinalities(self) -> list[int]:
        return [len(e) + 2 for e in self.bin_edges.values()]

    def bin_codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Quantile-bin codes of the binned numeric columns (0 = missing), int64."""
        cols = []
        for c, edges in self.bin_edges.items():
            x = frame[c].to_numpy(dtype=float)
            code = np.searchsorted(np.asarray(edges, dtype=float), x, side="right") + 1
            cols.append(np.where(np.isnan(x), 0, code))
        if not cols:
            return np.zeros((len(frame), 0), dtype=np.int64)
        return np.stack(cols, axis=1).astype(np.int64)

    def net_arrays(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`arrays` with the bin codes appended to the categorical codes."""
        xn, xc = self.arrays(frame)
        return xn, np.hstack([xc, self.bin_codes(frame)])

    def net_transform(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.net_arrays(self.numeric_frame(df))

    @property
    def numeric_inputs(self) -> list[str]:
        return [*self.numeric, *(f"{c}__missing" for c in self.missing_flags)]

    @property
    def cardinalities(self) -> list[int]:
        return [len(self.vocab[c]) + 1 for c in self.categorical]

    def fit(self, df: pd.DataFrame) -> TabularEncoder:
        for c in self.numeric:
            x = coerce_numeric(df[c])
            x = x.to_numpy(dtype=float) if x is not None else np.full(len(df), np.nan)
            med = float(np.nanmedian(x)) if np.isfinite(x).any() else 0.0
            self.medians[c] = med
            if np.isnan(x).any():
                self.missing_flags.append(c)
            x = np.where(np.isnan(x), med, x)
            # Heavy right tails (counts, money) are compressed so one whale does not
            # dominate a standardised input.
            if x.min() >= 0 and x.max() > 20 and np.percentile(x, 99) > 5 * max(np.median(x), 1):
                self.log_cols.append(c)
                x = np.log1p(x)
            self.means[c] = float(x.mean())
            self.stds[c] = float(x.std()) or 1.0
            raw = coerce_numeric(df[c])
            raw = raw.to_numpy(dtype=float) if raw is not None else np.full(len(df), np.nan)
            raw = raw[~np.isnan(raw)]
            if self.n_bins > 1 and len(np.unique(raw)) > self.n_bins:
                q = np.quantile(raw, np.linspace(0, 1, self.n_bins + 1)[1:-1])
                self.bin_edges[c] = np.unique(q).tolist()
        for c in self.categorical:
            txt = self._text(df[c])
            counts = txt.value_counts()
            self.vocab[c] = sorted(counts[counts >= 1].index.tolist())
        return self

    @staticmethod
    def _text(s: pd.Series) -> pd.Series:
        blank = _is_blank(s)
        return s.astype(str).str.strip().where(~blank, "<blank>")

    def numeric_frame(self, df: pd.DataFrame) -> pd.DataFrame:
        """Raw numeric values and categorical codes: the SHAP-facing feature frame."""
        out = {}
        small = len(df) <= SMALL_FRAME
        for c in self.numeric:
            if (
                c in df
                and small
                and isinstance(df[c].dtype, np.dtype)
                and df[c].dtype.kind in "biuf"
            ):
                out[c] = df[c].to_numpy(dtype=float)  # what coerce_numeric does, minus pandas
                continue
            x = coerce_numeric(df[c]) if c in df else None
            out[c] = x.to_numpy(dtype=float) if x is not None else np.full(len(df), np.nan)
        for c in self.categorical:
            lookup = self._lookup(c)
            if small:
                vals = df[c].to_numpy(dtype=object) if c in df else [None] * len(df)
                out[c] = np.array([lookup.get(_text_value(v), 0) for v in vals], dtype=float)
                continue
            txt = self._text(df[c]) if c in df else pd.Series(["<blank>"] * len(df))
            out[c] = txt.map(lookup).fillna(0).to_numpy(dtype=float)
        return pd.DataFrame(out, index=df.index)

    def _lookup(self, c: str) -> dict[str, int]:
        cache = self.__dict__.setdefault("_lookups", {})
        if c not in cache:
            cache[c] = {v: i + 1 for i, v in enumerate(self.vocab[c])}
        return cache[c]

    def arrays(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """A :meth:`numeric_frame` -> (standardised float32 inputs, int64 codes)."""
        cols = []
        for c in self.numeric:
            x = frame[c].to_numpy(dtype=float)
            x = np.where(np.isnan(x), self.medians[c], x)
            if c in self.log_cols:
                x = np.log1p(np.maximum(x, 0))
            cols.append((x - self.means[c]) / self.stds[c])
        for c in self.missing_flags:
            cols.append(np.isnan(frame[c].to_numpy(dtype=float)).astype(float))
        xn = np.stack(cols, axis=1) if cols else np.zeros((len(frame), 0))
        if self.categorical:
            xc = np.stack(
                [
                    np.nan_to_num(frame[c].to_numpy(dtype=float)).astype(np.int64)
                    for c in self.categorical
                ],
                axis=1,
            )
        else:
            xc = np.zeros((len(frame), 0), dtype=np.int64)
        return np.clip(xn, -8, 8).astype(np.float32), xc

    def transform(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.arrays(self.numeric_frame(df))

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items() if not k.startswith("_")})

    @classmethod
    def from_json(cls, text: str) -> TabularEncoder:
        return cls(**json.loads(text))
