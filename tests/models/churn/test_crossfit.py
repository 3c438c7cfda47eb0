"""The cross-fitted table model: its logistic member and its save/load round trip."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.model import ChurnModel, _logistic_member, fit_crossfit_table
from ppx.models.churn.tabular import TabularEncoder

from .test_byo import _table


def _data():
    df = _table(n=500, seed=1)
    y = (df["Churn"] == "Yes").to_numpy(dtype=float)
    enc = TabularEncoder(["tenure", "MonthlyCharges", "TotalCharges"], ["Contract"], n_bins=4)
    return df, y, enc.fit(df)


def test_logistic_member_reproduces_sklearn_logreg():
    df, y, enc = _data()
    xn, xc = enc.net_arrays(enc.numeric_frame(df))
    model = ChurnModel(encoder=enc, config=ChurnConfig(), horizons=[0], mode="table")
    net = _logistic_member(model, xn, xc, y, C=0.5)
    with torch.no_grad():
        z = net(torch.from_numpy(xn), torch.from_numpy(xc))[:, 0].numpy()
    onehot = np.eye(enc.cardinalities[0])[xc[:, 0]]
    ref = LogisticRegression(C=0.5, max_iter=3000).fit(np.hstack([xn, onehot]), y)
    np.testing.assert_allclose(z, ref.decision_function(np.hstack([xn, onehot])), atol=1e-4)


def test_crossfit_blend_saves_and_loads(tmp_path):
    df, y, enc = _data()
    cfg = ChurnConfig(max_epochs=3, hidden=8)
    model = fit_crossfit_table(df, y, enc, cfg, folds=3, seed=0)
    w = model.info["blend_weight"]
    assert 0.0 <= w <= 1.0
    # Three networks and one logistic member, weights summing to one.
    assert len(model.states) == 4 and np.isclose(sum(model.weights), 1.0)
    assert set(model.info["oof_roc_auc"]) == {"network", "linear", "blend"}
    p = model.predict_table(df)["p_churn"].to_numpy()
    again = ChurnModel.load(model.save(tmp_path / "m")).predict_table(df)["p_churn"].to_numpy()
    np.testing.assert_allclose(p, again, atol=1e-6)
    # Without the logistic member the model is the plain average of the networks.
    plain = fit_crossfit_table(df, y, enc, cfg, folds=3, seed=0, linear_C=None)
    assert plain.weights is None and len(plain.states) == 3


def test_piecewise_linear_encoding_is_monotone_and_bounded():
    df, _, _ = _data()
    enc = TabularEncoder(["tenure", "MonthlyCharges"], ["Contract"], ple_bins=8).fit(df)
    frame = enc.numeric_frame(df)
    ple = enc.ple(frame)
    assert ple.shape[1] == enc.net_numeric_width - len(enc.numeric_inputs) > 0
    assert ple.min() >= 0 and ple.max() <= 1
    # For one column the encoding sums to a non-decreasing function of the value.
    width = len(enc.ple_edges["tenure"]) - 1
    order = np.argsort(frame["tenure"].to_numpy())
    total = ple[order, :width].sum(axis=1)
    assert (np.diff(total) >= -1e-6).all()


def test_tabm_members_differ_and_the_model_round_trips(tmp_path):
    df, y, _ = _data()
    enc = TabularEncoder(
        ["tenure", "MonthlyCharges", "TotalCharges"], ["Contract"], n_bins=4, ple_bins=8
    ).fit(df)
    cfg = ChurnConfig(arch="tabm", members=4, hidden=16, depth=2, max_epochs=4)
    model = fit_crossfit_table(df, y, enc, cfg, folds=3, seed=0)
    net = model._ensure_nets()[0]
    xn, xc = enc.net_arrays(enc.numeric_frame(df))
    with torch.no_grad():
        z = net.member_logits(torch.from_numpy(xn), torch.from_numpy(xc))
        mean = net(torch.from_numpy(xn), torch.from_numpy(xc)).numpy()
    assert z.shape == (len(df), 4, 1)
    assert z.std(dim=1).mean() > 0  # the members disagree somewhere
    np.testing.assert_allclose(z.mean(dim=1).numpy(), mean, atol=1e-5)
    p = model.predict_table(df)["p_churn"].to_numpy()
    again = ChurnModel.load(model.save(tmp_path / "m")).predict_table(df)["p_churn"].to_numpy()
    np.testing.assert_allclose(p, again, atol=1e-6)
    alone = model.network_only_proba(enc.numeric_frame(df))
    assert alone.shape == p.shape and ((alone > 0) & (alone < 1)).all()
