"""Reason codes: exact for additive models, agree with SHAP on a network, documented shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from explain_toy import LinearModel

from ppx.explain.reason_codes import contributions, reason_codes
from ppx.explain.shapley import compute_shap


def test_pairwise_interactions_are_split_exactly_like_shap():
    class Pairwise(LinearModel):
        def score_features(self, X):
            X = np.asarray(X, dtype=float)
            return X @ self.w + 1.5 * X[:, 0] * X[:, 1] - X[:, 1] * X[:, 2]

    model = Pairwise([1.0, 0.5, -0.3])
    X = pd.DataFrame(np.random.default_rng(3).normal(size=(10, 3)), columns=model.feature_names)
    refs = model.background().sample(16, random_state=0)
    exact = compute_shap(model, X, background=refs, max_background=16, permutations=1).values
    np.testing.assert_allclose(contributions(model, X), exact, atol=1e-6)


def test_linear_contributions_are_exact_and_sorted_by_size():
    model = LinearModel([3.0, -2.0, 0.1])
    raw = pd.DataFrame({"x0": [1.0, -1.0], "x1": [4.0, 0.0], "x2": [0.0, 5.0]})
    # additive model: each contribution is w_j (x_j - E[x_j]) over the reference rows
    refs = model.background().sample(16, random_state=0).to_numpy().mean(axis=0)
    np.testing.assert_allclose(
        contributions(model, raw), (raw.to_numpy() - refs) * model.w, atol=1e-9
    )
    codes = reason_codes(model, raw, k=2)
    assert len(codes) == 2 and all(len(c) == 2 for c in codes)
    first = codes[0][0]
    assert set(first) == {
        "feature",
        "label",
        "value",
        "baseline",
        "contribution",
        "direction",
        "text",
    }
    assert first["feature"] == "x1" and first["direction"] == "lowers"
    assert abs(codes[0][0]["contribution"]) >= abs(codes[0][1]["contribution"])
    # a plain score (not a probability): said in score points
    assert (
        first["text"]
        == f"x1: 4 — lowers the model score by {abs(first['contribution']):.1f} score points"
    )


def test_network_reason_codes_mostly_agree_with_shap_on_the_top_feature(toy_model, tiny_tables):
    raw = toy_model.explain_requests(tiny_tables, 60, 1)
    X = toy_model.features(raw)
    shap_top = np.argmax(np.abs(compute_shap(toy_model, X, max_rows=60).values), axis=1)
    codes = reason_codes(toy_model, raw, k=3, model_name="churn")
    names = toy_model.feature_names
    fast_top = np.array([names.index(c[0]["feature"]) for c in codes])
    assert (fast_top == shap_top).mean() >= 0.6
    assert "churn risk" in codes[0][0]["text"]


def test_precomputed_features_skip_the_feature_step(toy_model, tiny_tables):
    raw = toy_model.explain_requests(tiny_tables, 3, 2)
    assert reason_codes(toy_model, raw, X=toy_model.features(raw)) == reason_codes(toy_model, raw)


def test_bad_k_is_rejected():
    with pytest.raises(ValueError, match="k must be"):
        reason_codes(LinearModel([1.0]), pd.DataFrame({"x0": [1.0]}), k=0)


def test_serving_factory_unwraps_the_pyfunc_and_returns_schema_fields(toy_model, tiny_tables):
    from explain_toy import ToyPyfunc

    from ppx.explain import SERVING_FIELDS, reason_code_explainer

    explain = reason_code_explainer(ToyPyfunc(toy_model), model_name="churn")
    raw = toy_model.explain_requests(tiny_tables, 4, 5)
    codes = explain(raw, 3)
    assert len(codes) == 4 and all(len(c) == 3 for c in codes)
    assert all(tuple(rc) == SERVING_FIELDS for c in codes for rc in c)
    full = reason_codes(toy_model, raw, k=3, model_name="churn")
    assert codes[0][0]["text"] == full[0][0]["text"]


def test_a_row_without_features_gets_no_reasons_not_an_error():
    model = LinearModel([1.0, 2.0])
    raw = pd.DataFrame({"x0": [1.0, np.nan], "x1": [2.0, 1.0]})
    codes = reason_codes(model, raw, k=2)
    assert len(codes[0]) == 2 and codes[1] == []


def test_requests_are_compared_with_references_sharing_their_flags():
    rng = np.random.default_rng(6)
    bg = pd.DataFrame({"x0": np.repeat([0.0, 1.0], 40), "x1": rng.normal(size=80)})
    model = LinearModel([5.0, 1.0], background=bg)  # x0: a context flag such as "in transit"
    model.context_features = ["x0"]
    codes = reason_codes(model, pd.DataFrame({"x0": [0.0], "x1": [2.0]}), k=2)[0]
    assert codes[0]["feature"] == "x1"
    assert codes[1]["contribution"] == 0.0  # compared with flag-off references only
