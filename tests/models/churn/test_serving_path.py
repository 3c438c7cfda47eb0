"""The model service's churn path scores every request like the training path.

Every subscriber of a generated world (and a hundred other customers), at each of the served snapshot's times and with no
``as_of`` (the decision service's request), plus unknown ids, goes through the saved and
reloaded model the way the model service sends it: JSON-typed columns, merged into
batches of one to eight. The snapshot rows the fast path reads must be the training
frame's rows for those customers and times, their network inputs the training frame's
encoding, bit for bit; the outputs must equal the frame path's, and the module-free
member scorers the network modules' logits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from ppx.data import columns as C
from ppx.features import churn as F
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.scoring import member_scorers, weighted_logits
from ppx.models.churn.train import fit_world, world_splits

#: Two deep members, no logistic blend (on this world validation may give the networks no
#: weight, leaving one wide-only member): the paths are under test, not the ranking.
CFG = ChurnConfig(max_epochs=3, patience=2, ensemble=2, depth=2, hidden=16)
OUTPUTS = ("customer_id", "as_of", "status", "p_churn_30", "p_churn_60", "p_churn_90")
UNKNOWN = (10**9, 10**9 + 7, -3)


@pytest.fixture(scope="module")
def served(tiny_world, reload_as_served):
    """(splits, reloaded pyfunc, training frame by (customer, as_of), wire requests,
    service-sized batches as (request indices, JSON columns))."""
    world, _ = tiny_world
    sp = world_splits(world.tables)
    model = fit_world(sp, CFG, blend=False).model
    pf, end = reload_as_served(sp, model, "churn_serving_path")
    # The training frame (train, validation and test months) plus the offline features
    # at the data end, the one served time after the last training snapshot; one row
    # per customer and time, the last subscription's, as a request gets.
    frame = pd.concat(
        [sp.train, sp.val, sp.test, F.churn_features(sp.history, end)], ignore_index=True
    )
    frame = frame.drop_duplicates([C.CUSTOMER_ID, F.AS_OF], keep="last")
    frame = frame.set_index([C.CUSTOMER_ID, F.AS_OF], drop=False)
    times = sorted(pd.to_datetime(model.snapshot[F.AS_OF]).unique())
    # every subscriber (active at some served time or not) and a hundred other customers
    subscribers = sp.history["subs"][C.CUSTOMER_ID].unique()
    others = np.setdiff1d(sp.history["customers"][C.CUSTOMER_ID].unique(), subscribers)
    rng = np.random.default_rng(4)
    customers = [int(c) for c in (*subscribers, *rng.choice(others, 100, replace=False))]
    wire = pd.DataFrame(
        [(c, t.isoformat()) for c in customers for t in times]
        + [(c, None) for c in customers]
        + [(c, t.isoformat()) for c in UNKNOWN for t in times[-2:]],
        columns=[C.CUSTOMER_ID, F.AS_OF],
    )
    order = rng.permutation(len(wire))  # batches mix customers, times and unknown ids
    cuts = np.cumsum(rng.choice([1, 2, 3, 4, 8], size=len(wire)))
    cuts = np.concatenate([[0], cuts[cuts < len(wire)], [len(wire)]])
    batches = [order[a:b] for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    return sp, pf, frame, wire, [(rows, _json_columns(wire.iloc[rows])) for rows in batches]


def _json_columns(wire: pd.DataFrame) -> dict[str, list]:
    """Rows as the model service passes them: unset fields left out of each row, then
    field -> one JSON value per request (None where a row lacks the field; no column
    when no row has it)."""
    rows = [{k: v for k, v in r.items() if not pd.isna(v)} for r in wire.to_dict("records")]
    keys = dict.fromkeys(k for r in rows for k in r)
    return {k: [r.get(k) for r in rows] for k in keys}


def _moment(value, end: pd.Timestamp) -> pd.Timestamp:
    return end if pd.isna(value) else pd.Timestamp(value)


def test_served_features_equal_the_training_frame(served):
    """Each request the snapshot answers reads the training frame's row for its customer
    and time, and the network gets that row's encoding, bit for bit; every other request
    is an unknown customer or one without an active subscription then."""
    sp, pf, frame, wire, batches = served
    model = pf.model
    end = pd.Timestamp(model.info["default_as_of"])
    row_of = pd.Series(np.arange(len(frame)), index=frame.index)
    snap_rows, at, xn, xc, statuses = [], [], [], [], []
    for rows, columns in batches:
        hits, snap, xn_b, xc_b = model.served_inputs(columns)
        status = np.asarray(pf.predict_columns(columns)["status"])
        statuses += list(status)
        keys = [
            (int(c), _moment(t, end))
            for c, t in wire.iloc[rows][[C.CUSTOMER_ID, F.AS_OF]].itertuples(index=False)
        ]
        in_frame = np.array([k in row_of.index for k in keys])
        np.testing.assert_array_equal(status == "ok", in_frame, err_msg=f"rows {rows}")
        np.testing.assert_array_equal(hits, np.flatnonzero(in_frame), err_msg=f"rows {rows}")
        at += [row_of[keys[i]] for i in hits]
        snap_rows.append(snap)
        xn.append(xn_b)
        xc.append(xc_b)
    at, snap_rows = np.array(at), np.concatenate(snap_rows)
    features = list(F.FEATURE_COLUMNS)
    pd.testing.assert_frame_equal(
        model.snapshot.iloc[snap_rows][features].reset_index(drop=True),
        frame.iloc[at][features].reset_index(drop=True),
        check_exact=True,
    )
    expected_xn, expected_xc = model.encoder.net_transform(frame)
    np.testing.assert_array_equal(np.concatenate(xn), expected_xn[at])
    np.testing.assert_array_equal(np.concatenate(xc), expected_xc[at])
    # The requests are varied: answered, inactive and unknown ones, every batch size.
    counts = pd.Series(statuses).value_counts()
    assert counts["ok"] == len(at) > len(wire) // 5
    assert counts["no_active_subscription"] > 0
    assert counts["unknown_customer"] == 2 * len(UNKNOWN)
    assert {len(rows) for rows, _ in batches} >= {1, 2, 3, 4, 8}


def test_served_outputs_equal_the_frame_path(served):
    """The columns path returns what the frame path ``predict`` returns for the same
    batch, exactly; against one frame of every answered request (other float32 matrix
    sizes in the network) the probabilities agree to 1e-6."""
    sp, pf, frame, wire, batches = served
    got = []
    for i, (rows, columns) in enumerate(batches):
        out = pf.predict_columns(columns)
        got.append(pd.DataFrame(out, index=rows))
        if i % 2:  # the frames cost most of the test
            continue
        slow = pf.predict(None, pd.DataFrame(columns))
        assert list(out) == list(slow.columns)
        for name in slow.columns:
            np.testing.assert_array_equal(
                np.asarray(out[name]), slow[name].to_numpy(), err_msg=f"{name}, rows {rows}"
            )
    served_all = pd.concat(got).sort_index()
    ok = (served_all["status"] == "ok").to_numpy()
    answered = served_all[ok]
    end = pd.Timestamp(pf.model.info["default_as_of"])
    keys = [
        (int(c), _moment(t, end))
        for c, t in wire.iloc[answered.index][[C.CUSTOMER_ID, F.AS_OF]].itertuples(index=False)
    ]
    whole = pf.model.predict_table(frame.loc[keys])
    for name in OUTPUTS[3:]:
        np.testing.assert_allclose(answered[name], whole[name], rtol=0, atol=1e-6, err_msg=name)
    assert served_all.loc[~ok, list(OUTPUTS[3:])].isna().all().all()
    assert 0 < answered["p_churn_30"].mean() < 1


def test_member_scorers_equal_the_network_modules(served):
    """The module-free scorers give the modules' weighted logits bit for bit, in batches
    of one to eight rows and on every snapshot row at once: the served model's two deep
    members, and the same with a wide-only (logistic) member and unequal weights, as a
    blended model has."""
    sp, pf, _, _, _ = served
    model = pf.model
    nets = model._ensure_nets()
    assert len(nets) == 2 and all(net.depth == 2 for net in nets)
    torch.manual_seed(1)
    wide = model._build_net(depth=0).eval()
    with torch.no_grad():  # a logistic member's weights are not zero
        for e in wide.wide_cat:
            e.weight.normal_()
    xn, xc = model.encoder.net_transform(model.snapshot)
    rng = np.random.default_rng(0)
    for members, weights in (
        (nets, [0.5, 0.5]),
        ([*nets, wide], [0.21, 0.17, 0.62]),
    ):
        scorers = member_scorers(members)
        assert scorers is not None

        def modules(a, b, members=members, weights=weights):
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            with torch.no_grad():
                out = sum(w * net(ta, tb) for w, net in zip(weights, members, strict=True))
            return out.numpy().astype(float)

        np.testing.assert_array_equal(weighted_logits(scorers, weights, xn, xc), modules(xn, xc))
        for size in (1, 2, 3, 4, 8):
            for _ in range(40):
                rows = rng.choice(len(xn), size, replace=False)
                np.testing.assert_array_equal(
                    weighted_logits(scorers, weights, xn[rows], xc[rows]),
                    modules(xn[rows], xc[rows]),
                    err_msg=f"batch of {size}",
                )


def test_member_scorers_follow_parameter_updates_and_skip_tabm():
    """The scorers read the parameters in place (an optimiser step reaches them); a
    TabM deep part or a network in training mode has no shortcut."""
    from ppx.models.churn.network import ChurnNet

    torch.manual_seed(0)
    net = ChurnNet(4, [3, 5], n_out=3, hidden=8, depth=1, bin_cardinalities=[4]).eval()
    xn = torch.randn(6, 4).numpy()
    xc = np.array([[0, 1, 2], [2, 4, 0], [1, 0, 3], [1, 2, 1], [0, 3, 2], [2, 1, 0]])
    scorers = member_scorers([net])

    def check():
        with torch.no_grad():
            ref = net(torch.from_numpy(xn), torch.from_numpy(xc)).numpy()
        np.testing.assert_array_equal(scorers[0].logits(xn, xc), ref)
        return ref

    before = check()
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net(torch.from_numpy(xn), torch.from_numpy(xc)).sum().backward()
    opt.step()
    assert not np.array_equal(before, check())
    tabm = ChurnNet(4, [3, 5], n_out=3, hidden=8, depth=1, arch="tabm", members=2).eval()
    assert member_scorers([net, tabm]) is None
    assert member_scorers([net.train()]) is None
