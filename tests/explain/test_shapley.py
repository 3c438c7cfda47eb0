"""SHAP values: exact on a linear model, additive on a real network, clear input errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from explain_toy import LinearModel

from ppx.explain.shapley import compute_shap


def test_linear_model_shap_values_are_weight_times_deviation_from_background_mean():
    model = LinearModel([2.0, -1.0, 0.0, 0.5])
    X = pd.DataFrame(np.random.default_rng(1).normal(size=(30, 4)), columns=model.feature_names)
    res = compute_shap(model, X, max_background=50)
    expected = (X.to_numpy() - model.background().to_numpy().mean(axis=0)) * model.w
    np.testing.assert_allclose(res.values, expected, atol=1e-5)
    assert list(res.importance().index[:2]) == ["x0", "x1"]
    assert res.importance()["x2"] == pytest.approx(0.0, abs=1e-9)
    assert res.direction()["x0"] == 1.0 and res.direction()["x1"] == -1.0


def test_network_shap_values_add_up_to_the_score(toy_model, tiny_tables):
    raw = toy_model.explain_requests(tiny_tables, 40, 0)
    res = compute_shap(toy_model, toy_model.features(raw), max_rows=40, seed=3)
    assert res.values.shape == (40, len(toy_model.feature_names))
    assert res.additivity_error() < 1e-4
    again = compute_shap(toy_model, toy_model.features(raw), max_rows=40, seed=3)
    np.testing.assert_allclose(res.values, again.values)


def test_rows_and_background_are_capped():
    model = LinearModel([1.0, 1.0])
    X = pd.DataFrame(np.ones((500, 2)), columns=model.feature_names)
    res = compute_shap(model, X, max_rows=25, max_background=10)
    assert len(res.scores) == 25 and res.background_rows == 10


def test_missing_or_non_numeric_feature_is_named():
    model = LinearModel([1.0, 1.0])
    with pytest.raises(ValueError, match="x1"):
        compute_shap(model, pd.DataFrame({"x0": [1.0]}))
    with pytest.raises(ValueError, match="non-numeric.*x0"):
        compute_shap(model, pd.DataFrame({"x0": ["a"], "x1": [1.0]}))
    with pytest.raises(ValueError, match="missing values.*x1"):
        compute_shap(model, pd.DataFrame({"x0": [1.0], "x1": [np.nan]}))


def test_object_without_the_protocol_is_rejected_by_name():
    class NotAModel:
        feature_names = ["a"]

    with pytest.raises(TypeError, match="score_features"):
        compute_shap(NotAModel(), pd.DataFrame({"a": [1.0]}))


def test_features_constant_in_the_sample_are_compared_with_matching_background_rows():
    rng = np.random.default_rng(4)
    bg = pd.DataFrame({"x0": rng.integers(0, 2, 80).astype(float), "x1": rng.normal(size=80)})
    model = LinearModel([5.0, 1.0], background=bg)
    X = pd.DataFrame({"x0": np.ones(20), "x1": rng.normal(size=20)})
    res = compute_shap(model, X, max_background=80)
    assert np.allclose(res.values[:, 0], 0.0)  # a checkout-only sample: no "x0" effect
    assert res.importance().index[0] == "x1"
    assert "restricted to rows matching the sample on x0" in res.method


def test_display_values_are_what_people_read():
    class Scaled(LinearModel):
        def display_values(self, X):
            return X * 100.0

    model = Scaled([1.0, 1.0])
    X = pd.DataFrame({"x0": [0.1, 0.2], "x1": [0.3, 0.4]})
    res = compute_shap(model, X)
    np.testing.assert_allclose(res.to_explanation().data, X.to_numpy() * 100.0)


def test_each_kind_of_decision_is_explained_against_its_own_kind():
    """Claims and returns in one sample: "is a claim" is context, never a reason, and each
    row's contributions start from its own kind's average (so they still add up)."""
    rng = np.random.default_rng(5)
    n = 120
    bg = pd.DataFrame({"is_claim": (np.arange(n) % 2).astype(float), "x1": rng.normal(size=n)})
    model = LinearModel([4.0, 1.0], background=bg)
    model.feature_names = ["is_claim", "x1"]
    X = pd.DataFrame({"is_claim": [0.0, 1.0] * 15, "x1": rng.normal(size=30)})
    res = compute_shap(model, X, max_background=n)
    assert np.allclose(res.values[:, 0], 0.0)
    assert res.importance().index[0] == "x1"
    claims = X["is_claim"].to_numpy() == 1.0
    assert res.bases()[claims].min() > res.bases()[~claims].max() + 3.0  # 4 apart, +/- noise
    assert res.additivity_error() < 1e-9
    assert "each kind of decision (is_claim)" in res.method
    # a kind with too few background rows of its own is explained against all, and said so
    rare = bg.assign(is_claim=(np.arange(n) < 3).astype(float))
    model._bg = rare
    res = compute_shap(model, X, max_background=n)
    assert "15 rows of a kind with under 5 such rows" in res.method
    model._bg = bg
    # a model may declare its own context features; none means no grouping
    model.context_features = []
    mixed = compute_shap(model, X, max_background=n)
    assert np.abs(mixed.values[:, 0]).mean() > 1.0
