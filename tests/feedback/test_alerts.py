"""Alerts fire on a planted rise in a theme's share and stay quiet on a flat series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.feedback.alerts import AlertParams, benjamini_hochberg, fisher_greater, scan
from ppx.feedback.trends import weekly_counts


def _corpus(rise_week: int | None, weeks: int = 40, per_week: int = 30, seed: int = 0):
    """Product 1: theme 0 at 5% of texts, rising to 30% from ``rise_week``; product 2 flat."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    start = pd.Timestamp("2025-01-06")
    for w in range(weeks):
        for product in (1, 2):
            share = 0.3 if (product == 1 and rise_week is not None and w >= rise_week) else 0.05
            at = (
                start
                + pd.Timedelta(days=7 * w)
                + pd.to_timedelta(rng.uniform(0, 6.9, per_week), "D")
            )
            lab = np.where(
                rng.random(per_week) < share, 0, np.where(rng.random(per_week) < 0.5, 1, -1)
            )
            rows.append(pd.DataFrame({C.PRODUCT_ID: product, C.CREATED_AT: at}))
            labels.append(lab)
    return pd.concat(rows, ignore_index=True), np.concatenate(labels)


def test_alert_fires_on_a_planted_rise_with_its_evidence():
    corpus, labels = _corpus(rise_week=25)
    alerts = scan(weekly_counts(corpus, labels, 2), AlertParams())
    hit = alerts[(alerts[C.PRODUCT_ID] == 1) & (alerts[C.THEME] == 0)]
    assert len(hit) > 0
    first = hit.sort_values("week").iloc[0]
    rise = pd.Timestamp("2025-01-06") + pd.Timedelta(weeks=25)
    assert rise <= first["week"] <= rise + pd.Timedelta(weeks=3)
    assert first["recent_share"] > first["baseline_share"]
    assert first["q_value"] <= 0.05
    # The flat product and the flat theme never alert.
    assert alerts[alerts[C.PRODUCT_ID] == 2].empty
    assert alerts[alerts[C.THEME] == 1].empty


def test_flat_series_keep_within_the_stated_false_alarm_rate():
    """At most ``fdr`` of weekly scans may carry a false alert when nothing rises."""
    params = AlertParams()
    scans = with_alert = 0
    for seed in range(20):
        corpus, labels = _corpus(rise_week=None, seed=seed)
        weekly = weekly_counts(corpus, labels, 2)
        scans += weekly["week"].nunique() - params.recent_weeks - params.baseline_weeks + 1
        with_alert += scan(weekly, params)["week"].nunique()
    assert scans == 20 * 25
    assert with_alert <= 2 * params.fdr * scans  # 10 of 500; expected at most 5


def test_fisher_matches_scipy_and_bh_is_monotone():
    from scipy.stats import fisher_exact

    a, rt, c, bt = 9, 20, 5, 60
    want = fisher_exact([[a, rt - a], [c, bt - c]], alternative="greater").pvalue
    assert fisher_greater(a, rt, c, bt) == pytest.approx(want)
    q = benjamini_hochberg(np.array([0.01, 0.04, 0.03, 0.2]))
    assert q.tolist() == pytest.approx([0.04, 0.16 / 3, 0.16 / 3, 0.2])
