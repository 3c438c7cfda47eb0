"""Fraud model behaviour: beats the rules, ring linkage raises risk, loyal customers pass."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.base import ExplainableModel
from ppx.models.fraud.config import FraudConfig
from ppx.models.fraud.pyfunc import FraudScorer, to_wire
from ppx.models.fraud.train import build_scorer, prepare, run_benchmark

CFG = FraudConfig(max_epochs=40, patience=8, lgb_estimators=200)


@pytest.fixture(scope="module")
def trained(small_world):
    world, _ = small_world
    P = prepare(tables=world.tables, truth=world.truth, cfg=CFG)
    bench = run_benchmark(P, CFG, progress=False)
    return world, P, bench, build_scorer(P, bench, CFG)


def _end(world):
    return world.tables[C.RETURNS][C.REQUESTED_AT].max() + pd.Timedelta(days=20)


def _claim(world, customer_id, device=None, signup=None):
    t = _end(world)
    row = {
        F.KIND: "claim",
        C.CUSTOMER_ID: customer_id,
        C.REQUESTED_AT: t,
        C.AMOUNT: 85.0,
        C.ORDERED_AT: t - pd.Timedelta(days=5),
        C.ORDER_VALUE: 85.0,
        C.DELIVERED_AT: t - pd.Timedelta(hours=8),
        C.CLAIM_TYPE: "item_not_received",
        C.SIGNATURE: False,
        C.GPS_DISTANCE_M: 15.0,
    }
    if device is not None:
        row.update({C.DEVICE_ID: device, C.SIGNUP_AT: signup or t - pd.Timedelta(days=7)})
    return pd.DataFrame([row])


def test_beats_rules_on_both_heads(trained):
    _, _, bench, _ = trained
    for head in ("return", "claim"):
        ours, rules = bench.tables[head]["ppx"], bench.tables[head]["rules"]
        assert ours["pr_auc"] > rules["pr_auc"] + 0.1
        assert ours["recall_at_1pct_fpr"] > rules["recall_at_1pct_fpr"]
        assert ours["ece"] < 0.05


def test_linkage_helps_lightgbm_on_returns(trained):
    _, _, bench, _ = trained
    t = bench.tables["return"]
    assert t["lightgbm"]["pr_auc"] > t["lightgbm_no_linkage"]["pr_auc"]


def test_new_account_sharing_device_with_three_fraudsters_scores_higher(trained):
    world, P, bench, scorer = trained
    lab = pd.concat([world.tables[C.RETURNS], world.tables[C.CLAIMS]])
    fraudsters = lab.loc[lab[C.CONFIRMED_FRAUD], C.CUSTOMER_ID].drop_duplicates().head(3)
    tables = dict(world.tables)
    cust = tables[C.CUSTOMERS].copy()
    cust.loc[cust[C.CUSTOMER_ID].isin(fraudsters), C.DEVICE_ID] = "dev-shared-by-three"
    tables[C.CUSTOMERS] = cust
    linked_scorer = FraudScorer(
        scorer.net,
        scorer.feature_names,
        F.build_history(tables, label_delay_days=CFG.label_delay_days),
        scorer.thresholds,
        scorer.background(),
        trees=scorer.trees,
    )
    new_id = int(cust[C.CUSTOMER_ID].max()) + 1
    linked = linked_scorer.predict(_claim(world, new_id, device="dev-shared-by-three"))
    alone = linked_scorer.predict(_claim(world, new_id, device="dev-of-its-own"))
    assert linked.loc[0, "p_fraud"] > alone.loc[0, "p_fraud"]


def test_loyal_customer_with_many_legit_returns_stays_below_review(trained):
    world, _, _, scorer = trained
    truth = world.truth[C.TRUTH_CUSTOMERS]
    r = world.tables[C.RETURNS]
    honest = set(truth.loc[truth[C.FRAUD_TYPE].isin(["none", "serial_returner"]), C.CUSTOMER_ID])
    counts = r[r[C.CUSTOMER_ID].isin(honest)].groupby(C.CUSTOMER_ID).size()
    loyal = int(counts.idxmax())
    assert counts.max() >= 5
    beans = world.tables[C.PRODUCTS]
    pid = int(beans.loc[beans[C.CATEGORY] == "beans", C.PRODUCT_ID].iloc[0])
    t = _end(world)
    req = pd.DataFrame(
        [
            {
                F.KIND: "return",
                C.CUSTOMER_ID: loyal,
                C.REQUESTED_AT: t,
                C.AMOUNT: 18.0,
                C.ORDERED_AT: t - pd.Timedelta(days=8),
                C.ORDER_VALUE: 36.0,
                C.DELIVERED_AT: t - pd.Timedelta(days=4),
                C.PRODUCT_ID: pid,
                C.REASON: "damaged",
            }
        ]
    )
    out = scorer.predict(req)
    assert not out.loc[0, "review"]
    assert out.loc[0, "recommendation"] == "approve"


def test_scorer_roundtrip_and_explainable(trained, tmp_path):
    _, P, _, scorer = trained
    raw = P.requests.drop(columns=[F.REQUEST_ID, C.CONFIRMED_FRAUD]).tail(20)
    before = scorer.predict(raw)
    loaded = FraudScorer.load(scorer.save(tmp_path / "m"))
    assert scorer.trees is not None and set(loaded.trees.boosters) == {"return", "claim"}
    after = loaded.predict(raw)
    np.testing.assert_allclose(before["p_fraud"], after["p_fraud"], rtol=1e-6)
    assert isinstance(loaded, ExplainableModel)
    X = loaded.features(raw)
    assert list(X.columns) == loaded.feature_names
    np.testing.assert_allclose(loaded.score_features(X.to_numpy()), after["p_fraud"], rtol=1e-6)
    assert list(loaded.background().columns) == loaded.feature_names
    assert ((after["p_fraud"] >= 0) & (after["p_fraud"] <= 1)).all()


def test_malformed_requests_get_clear_errors(trained):
    world, _, _, scorer = trained
    with pytest.raises(F.FraudRequestError, match="unknown customer_id"):
        scorer.predict(_claim(world, 10**9))
    bad = _claim(world, 1)
    bad[C.AMOUNT] = -1.0
    with pytest.raises(F.FraudRequestError, match="amount"):
        scorer.predict(bad)
    early = _claim(world, 1)
    early[C.DELIVERED_AT] = early[C.REQUESTED_AT] + pd.Timedelta(days=1)
    with pytest.raises(F.FraudRequestError, match="claim before delivery"):
        scorer.predict(early)


def test_served_features_equal_training_features(trained):
    """One code path: wire-format requests through the scorer (snapshot + prebuilt
    index) give exactly the training frame's features, row by row and in a batch."""
    from ppx.models.fraud.train import raw_requests

    _, P, _, scorer = trained
    rng = np.random.default_rng(3)
    rows = np.sort(rng.choice(np.flatnonzero(P.masks["test"]), 40, replace=False))
    wire = raw_requests(P.requests.iloc[rows])
    batch = scorer.features(wire)
    expected = P.X.iloc[rows][scorer.feature_names].reset_index(drop=True)
    pd.testing.assert_frame_equal(batch, expected, check_exact=False, rtol=1e-9)
    for i in range(0, 40, 8):
        one = scorer.features(wire.iloc[[i]])
        pd.testing.assert_series_equal(
            one.iloc[0], expected.iloc[i], check_names=False, check_exact=False, rtol=1e-9
        )


def test_ensemble_averages_members_and_bounds_inputs():
    import torch

    from ppx.models.fraud.network import FraudNet

    torch.manual_seed(0)
    net = FraudNet(4, claim_col=0, hidden=8, hidden2=4, members=3, soft_clip=2.0).eval()
    net.fit_preprocessing(np.array([[0, 0, 1, 2], [1, 0, 2, 3], [0, 1, 3, 4.0]]))
    x = torch.tensor([[0, 50.0, 1e6, -1e6], [1, 0, 2, 3]])
    with torch.no_grad():
        assert net._prep(x).abs().max() <= 2.0  # tanh saturates in float32
        assert torch.allclose(net.logits(x), net.member_logits(x).mean(0))


def test_tree_blend_weights_the_network_and_the_trees(trained):
    """w = 1 gives the network's probability, w = 0 the trees' own (before calibration)."""
    from ppx.models.fraud.trees import TreeBlend

    _, P, bench, scorer = trained
    names = scorer.feature_names
    X = P.X.loc[P.masks["test"], names].to_numpy(dtype=np.float64)[:200]
    p_net = np.linspace(0.01, 0.99, len(X))
    ident = {h: (1.0, 0.0) for h in ("return", "claim")}
    col = names.index("is_claim")
    only_net = TreeBlend(scorer.trees.boosters, 1.0, ident).blend(X, p_net, col)
    np.testing.assert_allclose(only_net, p_net, rtol=1e-6)
    only_trees = TreeBlend(scorer.trees.boosters, 0.0, ident).blend(X, p_net, col)
    claim = X[:, col] > 0.5
    for head, m in (("return", ~claim), ("claim", claim)):
        margin = scorer.trees.boosters[head].predict(X[m], raw_score=True)
        np.testing.assert_allclose(only_trees[m], 1 / (1 + np.exp(-margin)), rtol=1e-6)


def _json_columns(wire: pd.DataFrame) -> dict[str, list]:
    """Wire rows as the model service passes them: unset fields left out of each row,
    then field -> one JSON value per request (None where a row lacks the field)."""
    rows = [{k: v for k, v in r.items() if not pd.isna(v)} for r in wire.to_dict("records")]
    keys = dict.fromkeys(k for r in rows for k in r)
    return {k: [r.get(k) for r in rows] for k in keys}


def test_columns_path_scores_like_the_frame_path(trained):
    """The serving path (JSON-typed columns, no frames) gives the frame path's outputs:
    the same probabilities to 1e-9 and the same head, threshold, review and ring flag,
    one request at a time and batched, returns and claims, new accounts included."""
    from ppx.models.fraud.train import raw_requests

    world, P, _, scorer = trained
    rng = np.random.default_rng(5)
    rows = np.sort(rng.choice(np.flatnonzero(P.masks["test"]), 60, replace=False))
    wire = raw_requests(P.requests.iloc[rows]).reset_index(drop=True)
    assert set(wire[F.KIND]) == {"return", "claim"}
    newcomer = to_wire(_claim(world, 10**9, device="dev-newcomer"))
    wire = pd.concat([wire, newcomer], ignore_index=True)
    # A batch and a lone request run different float32 matrix sizes (noise of 1e-7),
    # so each path is compared with the other at the same batch size.
    batched = scorer.predict_columns(_json_columns(wire))
    singles = [scorer.predict_columns(_json_columns(wire.iloc[[i]])) for i in range(len(wire))]
    alone = {k: np.concatenate([s[k] for s in singles]) for k in batched}
    frame_alone = pd.concat([scorer.predict(wire.iloc[[i]]) for i in range(len(wire))])
    for got, expected in ((batched, scorer.predict(wire)), (alone, frame_alone)):
        np.testing.assert_allclose(got["p_fraud"], expected["p_fraud"], rtol=0, atol=1e-9)
        for k in ("head", "review_threshold", "review", "recommendation", "ring_member"):
            np.testing.assert_array_equal(got[k], expected[k].to_numpy(), err_msg=k)
    with pytest.raises(F.FraudRequestError, match="unknown customer_id"):
        scorer.predict_columns(_json_columns(to_wire(_claim(world, 10**9))))
