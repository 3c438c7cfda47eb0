"""Alerts: a theme whose share of a product's texts rises significantly.

The test, per (product, theme) at the end of each week: the last ``recent_weeks`` weeks
against the ``baseline_weeks`` before them, as a 2x2 table (theme / other texts x
recent / baseline), one-sided Fisher exact test (is the theme's share higher recently?).
Fisher conditions on both windows' totals, so the baseline's own noise is accounted
for — a plain binomial test against the baseline share would treat that share as
known and fire too often on products with few texts.

False alarms: in each weekly scan the p-values of all tested (product, theme) pairs go
through Benjamini-Hochberg at ``fdr`` (default 1%). When nothing is rising, BH bounds the
chance that a scan raises any alert by ``fdr``: at most one weekly scan in a hundred
carries a false alert, about one false alert every two years over the whole catalogue
(52 scans a year). When some themes do rise, at most 1% of a scan's alerts are false in
expectation. A per-scan 5% would mean a false alert every few months, which teaches a
product team to ignore the page. A pair needs ``min_count`` recent texts to be tested at
all (two complaints are not a trend). ``docs/feedback.md`` measures detection delay and the
false alerts this gives on planted themes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.feedback.trends import count_cube

P_VALUE = "p_value"
Q_VALUE = "q_value"


@dataclass
class AlertParams:
    recent_weeks: int = 4
    baseline_weeks: int = 12
    fdr: float = 0.01
    min_count: int = 3

    def to_dict(self) -> dict:
        return asdict(self)


def fisher_greater(a, recent_total, c, base_total) -> np.ndarray:
    """One-sided Fisher exact p-value that the recent share exceeds the baseline share."""
    from scipy.stats import hypergeom

    a, c = np.asarray(a), np.asarray(c)
    m = np.asarray(recent_total) + np.asarray(base_total)
    k = a + c
    return hypergeom.sf(a - 1, m, k, np.asarray(recent_total))


def benjamini_hochberg(p: np.ndarray) -> np.ndarray:
    """BH-adjusted q-values (monotone, capped at 1)."""
    p = np.asarray(p, dtype=float)
    n = len(p)
    if n == 0:
        return p
    order = np.argsort(p)
    ranked = p[order] * n / np.arange(1, n + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(n)
    out[order] = np.minimum(q, 1.0)
    return out


def scan(weekly: pd.DataFrame, params: AlertParams | None = None) -> pd.DataFrame:
    """Run the weekly test at every week with a full baseline; one row per alert.

    Columns: product_id, theme, week (the week the alert is raised), the recent and
    baseline counts/totals/shares, p_value and q_value.
    """
    params = params or AlertParams()
    products, weeks, counts, totals = count_cube(weekly)
    r, b = params.recent_weeks, params.baseline_weeks
    cols = [
        C.PRODUCT_ID,
        C.THEME,
        "week",
        "recent_count",
        "recent_total",
        "recent_share",
        "baseline_count",
        "baseline_total",
        "baseline_share",
        P_VALUE,
        Q_VALUE,
    ]
    if len(weeks) < r + b:
        return pd.DataFrame(columns=cols)
    zero = np.zeros(counts.shape[:2] + (1,), dtype=np.int64)
    cc = np.concatenate([zero, counts.cumsum(axis=2)], axis=2)
    ct = np.concatenate([np.zeros((len(products), 1), dtype=np.int64), totals.cumsum(1)], 1)
    rows = []
    for w in range(r + b - 1, len(weeks)):
        end, mid, start = w + 1, w + 1 - r, w + 1 - r - b
        a = cc[:, :, end] - cc[:, :, mid]
        c = cc[:, :, mid] - cc[:, :, start]
        rt = (ct[:, end] - ct[:, mid])[:, None].repeat(a.shape[1], 1)
        bt = (ct[:, mid] - ct[:, start])[:, None].repeat(a.shape[1], 1)
        tested = (a >= params.min_count) & (bt > 0) & (rt > 0)
        if not tested.any():
            continue
        pi, ti = np.nonzero(tested)
        p = fisher_greater(a[pi, ti], rt[pi, ti], c[pi, ti], bt[pi, ti])
        q = benjamini_hochberg(p)
        hit = q <= params.fdr
        for j in np.flatnonzero(hit):
            i, t = pi[j], ti[j]
            rows.append(
                (
                    int(products[i]),
                    int(t),
                    weeks[w],
                    int(a[i, t]),
                    int(rt[i, t]),
                    a[i, t] / rt[i, t],
                    int(c[i, t]),
                    int(bt[i, t]),
                    c[i, t] / bt[i, t],
                    float(p[j]),
                    float(q[j]),
                )
            )
    return pd.DataFrame(rows, columns=cols)


def first_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """The first alert of each (product, theme): when the rise was first noticed."""
    if alerts.empty:
        return alerts
    return (
        alerts.sort_values("week", kind="stable")
        .drop_duplicates([C.PRODUCT_ID, C.THEME])
        .reset_index(drop=True)
    )


def current_alerts(alerts: pd.DataFrame) -> pd.DataFrame:
    """Alerts raised in the latest scanned week (what the product team acts on now)."""
    if alerts.empty:
        return alerts
    return alerts[alerts["week"] == alerts["week"].max()].reset_index(drop=True)
