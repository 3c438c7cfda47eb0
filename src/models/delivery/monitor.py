"""Monitoring promises in production: realised on-time rate against the stated rate, and
input drift (``ppx monitor delivery``).

* :func:`on_time_by`: for promises already made, the realised on-time rate per group
  (carrier, lane) and purchase week, scored as known at ``now`` (a promise counts once
  its day has ended, so recent weeks are not flattered by their early deliveries), with
  a band around the stated rate - ``max(MIN_BAND, Z * binomial sd)`` - and an alert when
  the realised rate leaves it.
* :func:`psi` / :func:`feature_drift`: population stability index per feature of recent
  requests against the training data (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major).
* :func:`write_report`: both as one self-contained HTML page.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.models.delivery.tradeoff import Outcomes

MIN_BAND = 0.02  # never alert on less than 2 points
Z = 3.0  # binomial standard deviations of the band
PSI_MODERATE, PSI_MAJOR = 0.1, 0.25


def on_time_by(
    promises: pd.DataFrame,
    keys: list[str],
    now,
    ordered_col: str,
    delivered_col: str,
    promise_col: str = "promise_days",
    target_col: str = "promise_target",
) -> pd.DataFrame:
    """Realised vs stated on-time rate per ``keys`` x purchase week (from Monday).

    Columns: the keys, ``week``, ``scored`` (promises whose day ended by ``now``),
    ``realised``, ``stated`` (mean target), ``low`` / ``high`` (the band) and ``alert``.
    """
    o = Outcomes.at(
        promises[ordered_col].to_numpy(),
        promises[delivered_col].to_numpy(),
        np.datetime64(pd.Timestamp(now)),
        strict=True,
    )
    kept, scored = o.score(promises[promise_col].to_numpy())
    df = promises[keys].copy()
    df["week"] = promises[ordered_col].dt.to_period("W-SUN").dt.start_time.dt.date.astype(str)
    df["kept"], df["scored"] = kept, scored
    df["target"] = promises[target_col].to_numpy(float)
    df = df[df["scored"]]
    g = df.groupby([*keys, "week"], sort=True)
    out = g.agg(scored=("kept", "size"), realised=("kept", "mean"), stated=("target", "mean"))
    out = out.reset_index()
    sd = np.sqrt(out["stated"] * (1 - out["stated"]) / out["scored"])
    half = np.maximum(MIN_BAND, Z * sd)
    out["low"], out["high"] = out["stated"] - half, out["stated"] + half
    out["alert"] = (out["realised"] < out["low"]) | (out["realised"] > out["high"])
    return out


def psi(reference, current, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``.

    Numeric: ``bins`` quantile bins of the reference (ties merged); anything else: one
    bin per category. Empty bins get a share of 1e-4 so the index stays finite.
    """
    ref, cur = pd.Series(reference).dropna(), pd.Series(current).dropna()
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if pd.api.types.is_numeric_dtype(ref) and pd.api.types.is_numeric_dtype(cur):
        edges = np.unique(np.quantile(ref.to_numpy(float), np.linspace(0, 1, bins + 1)[1:-1]))
        r = np.bincount(
            np.searchsorted(edges, ref.to_numpy(float), side="right"), minlength=len(edges) + 1
        )
        c = np.bincount(
            np.searchsorted(edges, cur.to_numpy(float), side="right"), minlength=len(edges) + 1
        )
    else:
        cats = sorted(set(ref.astype(str)) | set(cur.astype(str)))
        r = ref.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy()
        c = cur.astype(str).value_counts().reindex(cats, fill_value=0).to_numpy()
    p = np.maximum(r / r.sum(), 1e-4)
    q = np.maximum(c / c.sum(), 1e-4)
    return float(np.sum((q - p) * np.log(q / p)))


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """PSI per feature present in both frames, largest first, with its level."""
    rows = []
    for col in [c for c in reference.columns if c in current.columns]:
        v = psi(reference[col], current[col])
        level = "major" if v > PSI_MAJOR else "moderate" if v > PSI_MODERATE else "stable"
        rows.append({"feature": col, "psi": v, "level": level})
    return pd.DataFrame(rows).sort_values("psi", ascending=False, na_position="last")


def _table(df: pd.DataFrame, flag: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        cls = ' class="alert"' if flag is not None and bool(r[flag]) else ""
        cells = "".join(
            f"<td>{v:.3f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>"
            for v in r.to_numpy()
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def write_report(path, sections: dict[str, pd.DataFrame], title: str, summary: list[str]) -> Path:
    """One self-contained HTML page: a plain-language summary, then one table per
    section (rows with ``alert`` or a ``major`` drift level highlighted)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
        "padding:3px 8px;text-align:right}tr.alert{background:#fdd}</style></head><body>",
        f"<h1>{html.escape(title)}</h1><ul>",
        *[f"<li>{html.escape(s)}</li>" for s in summary],
        "</ul>",
    ]
    for name, df in sections.items():
        flag = "alert" if "alert" in df else None
        if "level" in df:
            df = df.assign(alert=df["level"].eq("major"))
            flag = "alert"
        parts.append(f"<h2>{html.escape(name)}</h2>{_table(df, flag)}")
    parts.append("</body></html>")
    path.write_text("".join(parts), encoding="utf-8")
    return path
