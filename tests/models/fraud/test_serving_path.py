"""The model service's fraud path scores every request like the training path.

Thousands of requests of a generated world (every return and claim it holds, plus new
accounts that share an identifier with a known one) go through the saved and reloaded
scorer the way the model service sends them: JSON-typed columns, merged into batches of
one to eight. Their features must equal the training frame's exactly, their outputs the
frame path's, and the network's scoring shortcut the per-member modules' probabilities.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ppx.data import columns as C
from ppx.features import fraud as F
from ppx.models.fraud.config import FraudConfig
from ppx.models.fraud.network import FraudNet
from ppx.models.fraud.pyfunc import FraudScorer
from ppx.models.fraud.train import fit_blend, fit_network, predict_fit, prepare, raw_requests

#: A tiny model (three members, small trunks, few trees): the paths are under test, not
#: the ranking; three members exercise the stacked first layer, the trees the blend.
CFG = FraudConfig(
    max_epochs=3, patience=2, members=3, hidden=32, hidden2=16, lgb_estimators=30, seed=3
)
OUTPUTS = ("p_fraud", "head", "review_threshold", "review", "recommendation", "ring_member")
N_NEW = 40


@pytest.fixture(scope="module")
def served(small_world, tmp_path_factory):
    """(prepared world, reloaded scorer, wire requests, service-sized batches as (rows,
    JSON columns))."""
    world, _ = small_world
    P = prepare(tables=world.tables, truth=world.truth, cfg=CFG)
    fit = fit_blend(fit_network(P.X, P.y, P.masks, CFG, progress=False), P.X, P.y, P.masks, CFG)
    assert fit.trees is not None and set(fit.trees.boosters) == {"return", "claim"}
    # Thresholds at each head's 90th validation percentile: the review flag splits the
    # requests, so a decision that moved would show.
    p_val = predict_fit(fit, P.X.loc[P.masks["val"]])
    claim_val = P.X.loc[P.masks["val"], "is_claim"].to_numpy() > 0.5
    thresholds = {
        F.RETURN: float(np.quantile(p_val[~claim_val], 0.9)),
        F.CLAIM: float(np.quantile(p_val[claim_val], 0.9)),
    }
    trained = FraudScorer(
        fit.net, fit.feature_names, P.history, thresholds, P.X.iloc[:50], trees=fit.trees
    )
    scorer = FraudScorer.load(trained.save(tmp_path_factory.mktemp("fraud_served") / "model"))
    wire = pd.concat(
        [raw_requests(P.requests).reset_index(drop=True), _new_accounts(world, P.requests)],
        ignore_index=True,
    )
    rng = np.random.default_rng(11)
    order = rng.permutation(len(wire))  # batches mix kinds, times and new accounts
    cuts = np.cumsum(rng.choice([1, 2, 3, 4, 8], size=len(wire)))
    cuts = np.concatenate([[0], cuts[cuts < len(wire)], [len(wire)]])
    batches = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    # and batches of four new accounts beside four known ones (new accounts see each
    # other within a batch), scored a second time
    new = np.arange(len(P.requests), len(wire))
    batches += [
        np.concatenate([new[i : i + 4], rng.choice(len(P.requests), 4, replace=False)])
        for i in range(0, N_NEW, 8)
    ]
    batches = [(rows, _json_columns(wire.iloc[rows])) for rows in batches]
    return P, scorer, wire, batches


def _new_accounts(world, requests: pd.DataFrame) -> pd.DataFrame:
    """Requests of accounts the snapshot has never seen, each sharing one identifier
    (device, payment, address, e-mail or phone) with a known account, or none.

    They sign up after the world's last request, so no known request can see them
    (whatever batch it shares) and the known rows keep the training frame's features.
    """
    customers = world.tables[C.CUSTOMERS].sample(N_NEW, random_state=2).reset_index(drop=True)
    base = raw_requests(requests.sample(N_NEW, random_state=3)).reset_index(drop=True)
    kinds = (C.DEVICE_ID, C.PAYMENT_FINGERPRINT, C.ADDRESS, C.EMAIL, C.PHONE)
    first = int(world.tables[C.CUSTOMERS][C.CUSTOMER_ID].max()) + 1
    end = requests[C.REQUESTED_AT].max() + pd.Timedelta(days=20)
    times = (C.REQUESTED_AT, C.ORDERED_AT, C.PROMISED_DATE, C.DELIVERED_AT)
    for j in range(N_NEW):
        kind = kinds[j % len(kinds)]
        asked = pd.Timestamp(base.loc[j, C.REQUESTED_AT])
        shift = end + pd.Timedelta(hours=7 * j) - asked  # the request's own lags kept
        for col in times:
            if col in base.columns and pd.notna(base.loc[j, col]):
                base.loc[j, col] = _iso(pd.Timestamp(base.loc[j, col]) + shift)
        base.loc[j, C.CUSTOMER_ID] = first + j
        base.loc[j, C.SIGNUP_AT] = _iso(asked + shift - pd.Timedelta(days=3))
        base.loc[j, kind] = customers.loc[j, kind] if j % 4 else f"never-seen-{j}"
    return base


def _iso(t: pd.Timestamp) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S")


def _json_columns(wire: pd.DataFrame) -> dict[str, list]:
    """Rows as the model service passes them: unset fields left out of each row, then
    field -> one JSON value per request (None where a row lacks the field)."""
    rows = [{k: v for k, v in r.items() if not pd.isna(v)} for r in wire.to_dict("records")]
    keys = dict.fromkeys(k for r in rows for k in r)
    return {k: [r.get(k) for r in rows] for k in keys}


def test_served_features_equal_the_training_frame(served):
    """Every batch's features from the columns path (the scorer's prebuilt index and
    graph) equal the training frame's row for row, bit for bit; a batch with a new
    account equals the features built from scratch (fresh index and graph) for it."""
    P, scorer, wire, batches = served
    n_known = len(P.requests)
    expected = P.X[F.FEATURE_NAMES].to_numpy(dtype=float)
    seen_new = 0
    for rows, columns in batches:
        got = F.fraud_features(
            columns,
            scorer.history,
            graph=scorer.graph,
            index=scorer.index,
            as_frame=False,
        )
        known = rows < n_known
        np.testing.assert_array_equal(got[known], expected[rows[known]], err_msg=f"rows {rows}")
        if not known.all():
            seen_new += int((~known).sum())
            fresh = F.fraud_features(wire.iloc[rows], P.history).to_numpy()
            np.testing.assert_array_equal(got, fresh, err_msg=f"rows {rows}")
    assert seen_new == N_NEW + 4 * len(range(0, N_NEW, 8))
    # The requests are varied: both kinds, linked and flagged accounts, several batch sizes.
    linked = expected[:, F.FEATURE_NAMES.index("degree")] > 0
    assert 0.05 < linked.mean() < 0.95
    assert (expected[:, F.FEATURE_NAMES.index("nb_fraud_accounts")] > 0).any()
    assert {len(rows) for rows, _ in batches} >= {1, 2, 3, 4, 8}


def test_served_outputs_equal_the_frame_path(served):
    """The columns path returns what the frame path ``predict`` returns for the same
    batch, exactly (checked on every batch with a new account and every third other
    one: the frames cost most of the test); against one frame of every known request
    (other float32 matrix sizes in the network) the probabilities agree to 1e-6 and
    every decision is the same."""
    P, scorer, wire, batches = served
    n_known = len(P.requests)
    got = []
    for i, (rows, columns) in enumerate(batches):
        out = scorer.predict_columns(columns)
        if i < len(batches) - len(range(0, N_NEW, 8)):  # each request once
            got.append(pd.DataFrame(out, index=rows))
        if i % 3 and (rows < n_known).all():
            continue
        frame = scorer.predict(wire.iloc[rows])
        for k in OUTPUTS:
            np.testing.assert_array_equal(out[k], frame[k].to_numpy(), err_msg=k)
    # (new accounts, which link to each other only within a batch, are left out)
    served_all = pd.concat(got).sort_index().iloc[:n_known]
    whole = scorer.predict(wire.iloc[:n_known])
    np.testing.assert_allclose(served_all["p_fraud"], whole["p_fraud"], rtol=0, atol=1e-6)
    for k in OUTPUTS[1:]:
        np.testing.assert_array_equal(served_all[k], whole[k].to_numpy(), err_msg=k)
    assert 0 < served_all["review"].mean() < 0.5
    assert set(served_all["head"]) == {F.RETURN, F.CLAIM}


def test_scoring_network_equals_the_member_modules(served):
    """The network's scoring shortcut (no autograd: stacked first layers, direct layer
    calls) gives the per-member modules' probabilities, and the same decisions."""
    P, scorer, _, _ = served
    X = np.array(P.X[scorer.feature_names], dtype=float)
    fast = np.concatenate([scorer.score_features(X[i : i + 8]) for i in range(0, len(X), 8)])
    x = torch.as_tensor(X, dtype=torch.float32)
    with torch.enable_grad():  # autograd on: FraudNet runs its modules member by member
        p_modules = scorer.net(x).detach().numpy().astype(float)
    ref = scorer.trees.blend(X, p_modules, scorer.claim_col)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-6)
    head = np.where(X[:, scorer.claim_col] > 0.5, F.CLAIM, F.RETURN)
    thr = np.array([scorer.thresholds[h] for h in head])
    np.testing.assert_array_equal(fast >= thr, ref >= thr)


def _module_logits(net: FraudNet, x: torch.Tensor) -> torch.Tensor:
    with torch.enable_grad():
        return net.member_logits(x).detach()


def test_scoring_weights_follow_every_parameter_update():
    """The scoring shortcut keeps stacked weights between calls; an optimiser step,
    ``load_state_dict`` and ``load_state_dict(assign=True)`` must all reach it."""
    torch.manual_seed(0)
    net = FraudNet(6, claim_col=0, hidden=8, hidden2=4, members=3).eval()
    x = torch.tensor([[0, 1.0, 2, 3, 4, 5], [1, 0, 3, 1, 7, 2]])

    def check():
        with torch.no_grad():
            fast = net.member_logits(x)
        torch.testing.assert_close(fast, _module_logits(net, x), rtol=0, atol=1e-6)
        return fast

    before = check()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net.logits(x).sum().backward()
    opt.step()
    after_step = check()
    assert not torch.allclose(before, after_step)
    other = FraudNet(6, claim_col=0, hidden=8, hidden2=4, members=3)
    net.load_state_dict(other.state_dict())
    after_load = check()
    assert not torch.allclose(after_step, after_load)
    net.load_state_dict(FraudNet(6, 0, 8, 4, members=3).state_dict(), assign=True)
    assert not torch.allclose(after_load, check())
