"""Monitoring any served model: input drift and score drift against its training data.

* :func:`psi` / :func:`feature_drift`: population stability index per feature of recent
  requests against the training data (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major).
* :func:`score_distribution`: the model's headline score on the training sample and on
  recent requests, side by side by quantile, with the score's own PSI.
* :func:`model_drift`: both for a registered model on a world's recent requests
  (``ppx monitor churn|fraud|recs``; ``ppx monitor delivery`` adds realised on-time rates).
* :func:`write_report`: sections as one self-contained HTML page, like the SHAP reports,
  by default at :func:`report_path` (the configured reports folder, ``PPX_REPORTS_DIR``).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pandas as pd

PSI_MODERATE, PSI_MAJOR = 0.1, 0.25
SCORE_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


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


def report_path(model_name: str, out: Path | None = None) -> Path:
    """Where ``ppx monitor MODEL`` writes its page: ``out`` when given, else
    ``<reports_dir>/<model>_monitor.html`` in the configured reports folder
    (``PPX_REPORTS_DIR``, default ``reports/`` of the project), wherever the command runs."""
    if out is not None:
        return Path(out)
    from ppx.config import get_settings

    return get_settings().reports_dir / f"{model_name}_monitor.html"


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


def score_distribution(reference: np.ndarray, current: np.ndarray) -> pd.DataFrame:
    """The score's quantiles and mean on both samples, and one PSI row for the score."""
    ref, cur = np.asarray(reference, float), np.asarray(current, float)
    rows = [
        {
            "statistic": f"q{q:.2f}",
            "training": float(np.quantile(ref, q)),
            "recent": float(np.quantile(cur, q)),
        }
        for q in SCORE_QUANTILES
    ]
    rows.append({"statistic": "mean", "training": float(ref.mean()), "recent": float(cur.mean())})
    rows.append({"statistic": "rows", "training": float(len(ref)), "recent": float(len(cur))})
    out = pd.DataFrame(rows)
    v = psi(ref, cur)
    level = "major" if v > PSI_MAJOR else "moderate" if v > PSI_MODERATE else "stable"
    out["psi"] = v
    out["level"] = level
    return out


def model_drift(
    model, raw: pd.DataFrame, names: list[str] | None = None
) -> dict[str, pd.DataFrame]:
    """Score and input drift of an explainable model (``features``, ``score_features``,
    ``background``) on recent raw requests ``raw`` against its training sample.

    Inputs with missing values still count in their feature's PSI (over the values
    present); the score is compared on the rows whose inputs are all present, and the
    score table says how many recent rows had a missing input.
    """
    names = list(names or model.feature_names)
    ref = model.background()[names].astype(float)
    cur = model.features(raw)[names].astype(float)
    complete = np.isfinite(cur.to_numpy()).all(axis=1)
    if not complete.any():
        raise ValueError(f"every one of the {len(cur)} recent requests has a missing input")
    score = score_distribution(
        model.score_features(ref.to_numpy()), model.score_features(cur.to_numpy()[complete])
    )
    missing = {
        "statistic": "rows with a missing input",
        "training": 0.0,
        "recent": float((~complete).sum()),
    }
    score = pd.concat([score, pd.DataFrame([missing])], ignore_index=True)
    score[["psi", "level"]] = score[["psi", "level"]].ffill()
    return {"score": score, "inputs": feature_drift(ref, cur)}
