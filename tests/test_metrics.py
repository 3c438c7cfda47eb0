"""ppx.metrics: one definition per metric, checked inputs, directions the gate relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ppx import metrics as M


@pytest.fixture()
def scored():
    rng = np.random.default_rng(3)
    y = (rng.random(500) < 0.2).astype(int)
    p = np.clip(rng.beta(2, 5, 500) + 0.25 * y, 0, 1)
    return y, p


def test_classification_metrics_agree_with_sklearn(scored):
    y, p = scored
    assert M.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert M.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert M.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_ece_is_zero_for_calibrated_bins_and_large_for_overconfident_ones():
    y = np.array([0, 1] * 50)
    assert M.ece(y, np.full(100, 0.5)) == pytest.approx(0.0)
    assert M.ece(y, np.where(y == 1, 0.05, 0.95)) == pytest.approx(0.95)


def test_ranking_metrics_on_known_ranks():
    ranks = np.array([0, 1, 9, 10, 50])
    assert M.hit_rate(ranks, 10) == pytest.approx(3 / 5)
    want = (1 / np.log2(2) + 1 / np.log2(3) + 1 / np.log2(11)) / 5
    assert M.ndcg(ranks, 10) == pytest.approx(want)


def test_quantile_metrics():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert M.pinball(y, y, 0.9) == 0.0
    # Under-predicting by 1 costs q, over-predicting by 1 costs 1 - q.
    assert M.pinball(y, y - 1, 0.9) == pytest.approx(0.9)
    assert M.pinball(y, y + 1, 0.9) == pytest.approx(0.1)
    assert M.coverage(y, np.array([1.0, 1.0, 3.0, 5.0])) == pytest.approx(0.75)
    assert M.mae(y, y + 2) == pytest.approx(2.0)


def test_recall_at_fpr_finds_the_positives_above_every_negative():
    y = np.array([1, 1, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.3, 0.2, 0.1, 0.05])
    assert M.recall_at_fpr(y, s, max_fpr=0.0) == pytest.approx(2 / 3)


def test_one_class_is_nan_not_an_error():
    y = np.zeros(10)
    s = np.linspace(0, 1, 10)
    for fn in (M.roc_auc, M.pr_auc, M.recall_at_fpr):
        assert math.isnan(fn(y, s))


@pytest.mark.parametrize(
    ("y", "p", "kwargs", "message"),
    [
        ([0, 1], [0.5], {}, "2 labels but 1 predictions"),
        ([], [], {}, "no rows"),
        ([0, 1, 1], [0.1, np.nan, 0.3], {}, "non-finite predictions (rows [1])"),
        ([0, 2, 1], [0.1, 0.2, 0.3], {"binary": True}, "labels must be 0/1, rows [1]"),
        ([0, 1], [0.1, 1.5], {"probability": True}, "probabilities must be in [0, 1], rows [1]"),
        ([[0, 1]], [[0.1, 0.2]], {}, "1-D arrays"),
    ],
)
def test_one_input_check_names_metric_and_rows(y, p, kwargs, message):
    with pytest.raises(M.MetricInputError) as err:
        M.check_inputs("some_metric", y, p, **kwargs)
    assert str(err.value).startswith("some_metric: ")
    assert message in str(err.value)


def test_every_metric_function_runs_the_check():
    with pytest.raises(M.MetricInputError, match="ece"):
        M.ece([0, 1], [0.2, 1.2])
    with pytest.raises(M.MetricInputError, match="roc_auc"):
        M.roc_auc([0, 1, 1], [0.2, 0.4])
    with pytest.raises(M.MetricInputError, match="ndcg_10"):
        M.ndcg([-1, 2])


def test_registry_directions_and_comparisons(scored):
    y, p = scored
    assert M.direction("roc_auc") == "maximize"
    assert M.direction("ece") == "minimize"
    assert M.score("roc_auc", y, p) == M.roc_auc(y, p)
    assert M.better("roc_auc", 0.8, 0.7) and not M.better("roc_auc", 0.7, 0.8)
    assert M.better("pinball_0_9", 1.0, 1.2) and not M.better("pinball_0_9", 1.2, 1.0)
    assert M.better("coverage_0_9", 0.91, 0.97) and not M.better("coverage_0_9", 0.8, 0.88)
    assert M.better("ndcg_10", 0.1, float("nan")) and not M.better("ndcg_10", float("nan"), 0.1)
    with pytest.raises(KeyError, match="known: "):
        M.get("accuracy_at_nothing")
