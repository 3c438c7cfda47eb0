"""The world model's logistic member and blend: choices on validation, one scoring path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ppx.data.io import load_tables
from ppx.models.churn.blend import (
    BLEND_WEIGHTS,
    _design,
    _l1_logistic,
    blend_logistic,
    blend_weight,
    survival_logistic_member,
)
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.model import ChurnModel, hazard_targets
from ppx.models.churn.train import fit_world, world_splits


@pytest.fixture(scope="module")
def splits_and_network(tiny_world):
    _, path = tiny_world
    sp = world_splits(load_tables(path, validate=False))
    net = fit_world(sp, ChurnConfig(max_epochs=4, patience=2), blend=False)
    return sp, net.model


def test_blend_weight_picks_the_best_validation_ranking():
    rng = np.random.default_rng(0)
    y = rng.random(4000) < 0.2
    signal = y + rng.normal(0, 1.0, y.size)
    # The "network" is pure noise, the logistic logit carries the signal on another scale.
    w, aucs = blend_weight(rng.normal(0, 5, y.size), 10 * signal, y.astype(float))
    assert w == 0.0 and len(aucs) == len(BLEND_WEIGHTS)
    assert aucs["0.0"] == max(aucs.values())
    w, _ = blend_weight(10 * signal, rng.normal(0, 5, y.size), y.astype(float))
    assert w == 1.0


def test_logistic_member_is_the_fitted_regression(splits_and_network):
    sp, model = splits_and_network
    C = 0.3
    lin = survival_logistic_member(model, sp.train, C)
    assert lin is not None and lin.depth == 0
    Y, M = hazard_targets(sp.train, model.horizons)
    X, xn, xc = _design(model, sp.val)
    with torch.no_grad():
        z = lin(torch.from_numpy(xn), torch.from_numpy(xc)).numpy()
    Xt = _design(model, sp.train)[0]
    for k in range(len(model.horizons)):
        rows = M[:, k] > 0
        ref = _l1_logistic(Xt[rows], Y[rows, k], C).decision_function(X)
        # float32 weights and inputs in the network vs float64 in scikit-learn
        np.testing.assert_allclose(z[:, k], ref, rtol=1e-3, atol=1e-3)


def test_blended_model_scores_the_same_after_save_and_load(splits_and_network, tmp_path):
    sp, model = splits_and_network
    blended = blend_logistic(model, sp.train, sp.val)
    info = blended.info
    assert info["blend_weight"] in BLEND_WEIGHTS
    assert info["val_roc_auc"]["blend"] == pytest.approx(
        info["blend_weight_val_roc_auc"][str(info["blend_weight"])]
    )
    assert info["logistic_C_val_roc_auc"][str(info["logistic_C"])] == max(
        info["logistic_C_val_roc_auc"].values()
    )
    # The network itself is left as it was (the bench reports it alone).
    assert model.weights is None and len(model.states) == 1
    p = blended.predict_table(sp.test)
    assert (p["p_churn_30"] <= p["p_churn_60"] + 1e-12).all()
    assert (p["p_churn_60"] <= p["p_churn_90"] + 1e-12).all()
    loaded = ChurnModel.load(blended.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.predict_table(sp.test), p, rtol=1e-6, atol=1e-6)
