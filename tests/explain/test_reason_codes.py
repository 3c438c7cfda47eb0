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


def _occlusion_by_definition(f, A: np.ndarray, R: np.ndarray) -> np.ndarray:
    """The module docstring's formula, one swapped row at a time (no shortcuts)."""
    n, m, p = R.shape
    out = np.zeros((n, p))
    for i in range(n):
        x = A[i]
        for b in R[i]:
            for j in range(p):
                leave, add = x.copy(), b.copy()
                leave[j], add[j] = b[j], x[j]
                pair = f(np.stack([x, leave, add, b]))
                out[i, j] += ((pair[0] - pair[1]) + (pair[2] - pair[3])) / 2.0 / m
    return out


class FlagsAndInteractions(LinearModel):
    """Binary flags (one never set), a count and a three-way interaction: many
    request/reference pairs share a value, and the model is not pairwise (the shortcut
    must not rely on it)."""

    def __init__(self):
        rng = np.random.default_rng(11)
        bg = pd.DataFrame(
            {
                "x0": rng.normal(size=80),
                "x1": (rng.random(80) < 0.2).astype(float),
                "x2": (rng.random(80) < 0.5).astype(float),
                "x3": 0.0,
                "x4": rng.integers(0, 3, 80).astype(float),
            }
        )
        super().__init__([0.7, 1.5, -0.4, 0.4, 0.3], background=bg)

    def score_features(self, X):
        X = np.asarray(X, dtype=float)
        z = X @ self.w + 2.0 * X[:, 0] * X[:, 1] * X[:, 4] - X[:, 2] * X[:, 4] ** 2
        return 1.0 / (1.0 + np.exp(-z))


def test_contributions_equal_the_definition_while_scoring_only_rows_that_differ():
    from ppx.explain import reason_codes as rc
    from ppx.explain.shapley import scorer

    model = FlagsAndInteractions()
    raw = model.background().sample(12, random_state=4).reset_index(drop=True)
    raw.loc[0, "x1"] = 1.0  # a rare flag set: differs from most references
    A = raw.to_numpy(dtype=np.float64)
    R = rc.pick_references(A, rc.references(model))
    expected = _occlusion_by_definition(scorer(model), A, R)

    scored = []

    def counting(rows):
        scored.append(len(rows))
        return scorer(model)(rows)

    got = rc._chunk_contributions(counting, A, R)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(rc.contributions(model, raw), expected, rtol=1e-12, atol=1e-15)
    # only (request, reference, feature) triples whose values differ need swapped rows,
    # and a row repeated across references is scored once
    n, m, p = R.shape
    differing = int((A[:, None, :] != R).sum())
    assert len(scored) == 1 and scored[0] <= n + n * m + 2 * differing < n + n * m + 2 * n * m * p
    # features equal to every reference contribute exactly nothing
    same = (A[:, None, :] == R).all(axis=1)
    assert same.any() and (got[same] == 0.0).all()


def test_repeated_rows_are_scored_once_with_the_same_result():
    from ppx.explain.reason_codes import _score_distinct

    rows = np.array([[1.0, 0.0], [2.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    seen = []

    def f(X):
        seen.append(X.copy())
        return X[:, 0] * 10 + X[:, 1]

    np.testing.assert_array_equal(_score_distinct(f, rows), f(rows))
    assert len(seen[0]) == 3  # the first call: distinct rows only


def test_torch_network_contributions_equal_the_definition(toy_model, tiny_tables):
    from ppx.explain import reason_codes as rc
    from ppx.explain.shapley import scorer

    raw = toy_model.explain_requests(tiny_tables, 8, 3)
    A = toy_model.features(raw).to_numpy(dtype=np.float64)
    R = rc.pick_references(A, rc.references(toy_model))
    expected = _occlusion_by_definition(scorer(toy_model), A, R)
    # float32 network: rows scored in other batches round differently in the last bits
    X = pd.DataFrame(A, columns=toy_model.feature_names)
    np.testing.assert_allclose(rc.contributions(toy_model, X), expected, atol=1e-6)
