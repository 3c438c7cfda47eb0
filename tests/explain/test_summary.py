"""The plain-language summary is computed from the sample, not written by hand."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from ppx.explain.shapley import ShapResult
from ppx.explain.summary import feature_contrasts, plain_summary


def _result(late: np.ndarray, noise: np.ndarray, scores: np.ndarray) -> ShapResult:
    data = pd.DataFrame({"late_deliveries_90d": late, "noise": noise})
    values = np.column_stack([scores - scores.mean(), np.zeros_like(scores)])
    return ShapResult(values, float(scores.mean()), data, scores, list(data), "test", 0.0, 10)


def test_count_feature_split_reports_the_measured_risk_ratio():
    rng = np.random.default_rng(0)
    late = rng.integers(0, 5, 400).astype(float)
    scores = np.where(late >= 2, 0.3, 0.1) + rng.normal(0, 0.005, 400)
    res = _result(late, rng.normal(size=400), scores)
    (c, *_) = feature_contrasts(res, object())
    assert c.feature == "late_deliveries_90d"
    assert c.condition == "late deliveries 90d of 2 or more"
    group = late >= 2
    assert c.ratio == scores[group].mean() / scores[~group].mean()
    text = " ".join(plain_summary(res, object(), "churn"))
    assert f"{c.ratio:.1f}x the churn risk" in text
    assert re.search(
        r"Subscribers with late deliveries 90d of 2 or more \(\d+% of the sample\)", text
    )


def test_scores_with_a_unit_are_compared_as_differences():
    rng = np.random.default_rng(1)
    late = rng.integers(0, 2, 300).astype(float)
    scores = 3.0 + 1.5 * late + rng.normal(0, 0.01, 300)
    text = " ".join(
        plain_summary(_result(late, rng.normal(size=300), scores), object(), "delivery")
    )
    assert "expected transit time 1.5 days higher" in text
    assert "late deliveries 90d = 1" in text


def test_a_constant_model_is_called_out_instead_of_tiny_differences():
    rng = np.random.default_rng(2)
    late = rng.integers(0, 5, 100).astype(float)
    res = _result(late, rng.normal(size=100), np.full(100, 25.8))
    text = plain_summary(res, object(), "delivery")
    assert "practically the same expected transit time" in text[-1]
    assert not any("higher than the others" in s for s in text)


def test_category_codes_are_compared_one_category_against_the_rest():
    rng = np.random.default_rng(3)
    carrier = rng.integers(0, 3, 300).astype(float)
    scores = 3.0 + 2.0 * (carrier == 1) + rng.normal(0, 0.01, 300)
    data = pd.DataFrame({"carrier_code": carrier, "noise": rng.normal(size=300)})
    values = np.column_stack([scores - scores.mean(), np.zeros(300)])
    res = ShapResult(values, float(scores.mean()), data, scores, list(data), "test", 0.0, 10)
    (c, *_) = feature_contrasts(res, object())
    assert c.condition == "carrier code = 1"
    assert c.difference > 1.9
