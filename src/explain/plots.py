"""Report figures as base64 PNG strings (matplotlib Agg: no display, nothing fetched).

Images are embedded in the HTML as ``data:`` URIs, so a report is one file that opens
anywhere, offline, and can be attached to an MLflow run or an email as is.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg", force=False)

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ppx.explain.labels import feature_label  # noqa: E402
from ppx.explain.shapley import ShapResult  # noqa: E402

DPI = 80


def to_base64(fig) -> str:
    """PNG bytes of a figure, base64-encoded; closes the figure (no leak across reports)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _labelled(result: ShapResult, rows=None, labels: dict | None = None):
    expl = result.to_explanation(rows)
    labels = labels or {}
    expl.feature_names = [labels.get(n) or feature_label(n) for n in result.feature_names]
    return expl


def importance_bar(
    result: ShapResult, labels: dict | None = None, top: int = 15, unit: str = ""
) -> str:
    """Global importance: mean |SHAP| per feature, largest on top."""
    imp = result.importance().iloc[:top][::-1]
    labels = labels or {}
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(imp) + 1.2))
    ax.barh([labels.get(n) or feature_label(n) for n in imp.index], imp.to_numpy(), color="#1E88E5")
    ax.set_xlabel(f"average size of the effect ({unit})" if unit else "average size of the effect")
    ax.spines[["top", "right"]].set_visible(False)
    return to_base64(fig)


def beeswarm(result: ShapResult, labels: dict | None = None, top: int = 12) -> str:
    """Every explained row as a dot per feature: position = contribution, colour = value."""
    import shap

    plt.figure()
    shap.plots.beeswarm(_labelled(result, labels=labels), max_display=top, show=False)
    return to_base64(plt.gcf())


def dependence(result: ShapResult, feature: str, labels: dict | None = None) -> str:
    """How one feature's value maps to its contribution across the sample."""
    import shap

    j = result.feature_names.index(feature)
    expl = _labelled(result, labels=labels)
    fig, ax = plt.subplots(figsize=(6, 4))
    shap.plots.scatter(expl[:, j], ax=ax, show=False)
    return to_base64(fig)


def waterfall(result: ShapResult, row: int, labels: dict | None = None, top: int = 10) -> str:
    """One decision taken apart: from the average score to this row's score, feature by feature."""
    import shap

    plt.figure()
    shap.plots.waterfall(_labelled(result, labels=labels)[row], max_display=top, show=False)
    return to_base64(plt.gcf())


def typical_rows(scores: np.ndarray, quantiles=(0.1, 0.5, 0.9)) -> list[tuple[str, int]]:
    """Rows whose score is closest to the low / typical / high quantiles of the sample."""
    names = {0.1: "a low score", 0.5: "a typical score", 0.9: "a high score"}
    out: list[tuple[str, int]] = []
    used: set[int] = set()
    for q in quantiles:
        target = np.quantile(scores, q)
        order = np.argsort(np.abs(scores - target), kind="stable")
        row = next((int(i) for i in order if int(i) not in used), int(order[0]))
        used.add(row)
        out.append((names.get(q, f"the {q:.0%} quantile"), row))
    return out
