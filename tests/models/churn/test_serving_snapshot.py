"""The served model's precomputed snapshot gives exactly what per-request features give."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features import churn as F
from ppx.models.churn.config import ChurnConfig
from ppx.models.churn.train import fit_world, world_splits


@pytest.fixture(scope="module")
def served(tiny_world, reload_as_served):
    """A model saved and loaded the way the pyfunc does, with and without the snapshot."""
    world, _ = tiny_world
    sp = world_splits(world.tables)
    model = fit_world(sp, ChurnConfig(max_epochs=5, patience=2)).model
    pf, end = reload_as_served(sp, model, "churn_served")
    return sp, pf, end


def test_snapshot_covers_recent_month_starts(served):
    sp, pf, end = served
    times = pd.to_datetime(pf.model.snapshot[F.AS_OF]).unique()
    assert end in times and len(times) == F.SERVING_SNAPSHOT_MONTHS


def test_lookup_equals_online_computation_and_offline_features(served):
    sp, pf, end = served
    model = pf.model
    snap = model.snapshot
    t = end - pd.DateOffset(months=1)
    cids = snap.loc[snap[F.AS_OF] == t, C.CUSTOMER_ID].drop_duplicates().head(8).tolist()
    unknown, inactive = 10**9, None
    subs = sp.history["subs"]
    gone = subs[subs[C.CANCELLED_AT] < t - pd.DateOffset(months=1)][C.CUSTOMER_ID]
    active_then = set(snap.loc[snap[F.AS_OF] == t, C.CUSTOMER_ID])
    inactive = next(int(c) for c in gone if c not in active_then)
    req = pd.DataFrame(
        {
            C.CUSTOMER_ID: [*cids, unknown, inactive, cids[0]],
            F.AS_OF: [str(t.date())] * (len(cids) + 2) + [None],
        }
    )
    fast = pf.predict(None, req)
    # The same requests with the lookup switched off compute every feature online.
    model.snapshot, model._lookup = None, None
    try:
        slow = pf.predict(None, req)
        slow_rows = model.subscription_rows(req)
    finally:
        model.snapshot, model._lookup = snap, None
    pd.testing.assert_frame_equal(fast, slow)
    assert list(fast["status"][-3:]) == ["unknown_customer", "no_active_subscription", "ok"]
    # ...and equal the offline batch features scored in one go.
    offline = F.churn_features(sp.history, t).drop_duplicates(C.CUSTOMER_ID, keep="last")
    offline = offline.set_index(C.CUSTOMER_ID).loc[cids].reset_index()
    expect = model.predict_table(offline)
    np.testing.assert_allclose(fast["p_churn_30"].to_numpy()[: len(cids)], expect["p_churn_30"])
    fast_rows = model.subscription_rows(req)
    pd.testing.assert_frame_equal(
        fast_rows[list(F.FEATURE_COLUMNS)], slow_rows[list(F.FEATURE_COLUMNS)], check_dtype=False
    )


def test_mid_month_request_is_computed(served):
    sp, pf, end = served
    snap = pf.model.snapshot
    cid = int(snap.loc[snap[F.AS_OF] == end, C.CUSTOMER_ID].iloc[0])
    t = end - pd.Timedelta(days=10)
    out = pf.predict(None, pd.DataFrame({C.CUSTOMER_ID: [cid], F.AS_OF: [str(t)]}))
    feats = F.churn_features(F.restrict_history(sp.history, [cid]), t).iloc[[-1]]
    expect = pf.model.predict_table(feats)["p_churn_30"].iloc[0]
    assert out.loc[0, "status"] == "ok"
    assert out.loc[0, "p_churn_30"] == pytest.approx(expect)


def test_indexed_history_restricts_like_a_scan(served):
    sp, pf, _ = served
    cids = sp.history["subs"][C.CUSTOMER_ID].drop_duplicates().head(3).tolist()
    fast = F.restrict_history(pf.model.history, cids)
    slow = F.restrict_history(sp.history, cids)
    for name in F.HISTORY_TABLES:
        pd.testing.assert_frame_equal(fast[name], slow[name], check_dtype=False)


def test_small_frames_encode_like_large_ones():
    """Online requests (few rows) take a pure-Python path; it must match pandas'."""
    from ppx.models.churn.tabular import SMALL_FRAME, TabularEncoder

    raw = pd.DataFrame(
        {
            "n": [1.5, np.nan, 3.0, 0.0, 7.0, 2.0],
            "k": [1, 2, 3, 4, 5, 6],
            "cat": [" Yes", "No", None, "?", "", "maybe"],
            "num_cat": [1.0, np.nan, 2.0, 1.0, 1.0, 2.0],
        }
    )
    enc = TabularEncoder(["n", "k"], ["cat", "num_cat"]).fit(raw.iloc[:4])
    big = pd.concat([raw] * (SMALL_FRAME // len(raw) + 2), ignore_index=True)
    assert len(big) > SMALL_FRAME
    expect = enc.numeric_frame(big).iloc[: len(raw)]
    got = enc.numeric_frame(raw)
    pd.testing.assert_frame_equal(got, expect)
    assert got["cat"].tolist()[:4] == [3.0, 2.0, 1.0, 1.0]  # "?" and None are blanks
    assert got["cat"].iloc[5] == 0.0  # unseen


def test_columns_path_answers_like_the_frame_path(served):
    """The service's pandas-free path: same rows as ``predict``, snapshot or computed."""
    sp, pf, end = served
    snap = pf.model.snapshot
    cids = snap.loc[snap[F.AS_OF] == end, C.CUSTOMER_ID].drop_duplicates().head(3).tolist()
    mid_month = str((end - pd.Timedelta(days=10)).date())
    for cols in (
        {C.CUSTOMER_ID: [*cids, 10**9]},  # no as_of: the latest snapshot, as the engine asks
        {C.CUSTOMER_ID: cids, F.AS_OF: [str(end.date()), None, mid_month]},  # one computed
    ):
        fast = pf.predict_columns(cols)
        # each request alone through the frame path: snapshot answers stay snapshot
        # answers, so the merged batch (computed for all once one needs it) is checked
        # against a different path, not against itself
        alone = [
            pf.predict(None, pd.DataFrame({k: [v[i]] for k, v in cols.items()}))
            for i in range(len(cols[C.CUSTOMER_ID]))
        ]
        slow = pd.concat(alone, ignore_index=True)
        assert list(fast) == list(slow.columns)
        for name in slow.columns:
            got, want = np.asarray(fast[name]), slow[name].to_numpy()
            if want.dtype.kind == "f":
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
            else:
                np.testing.assert_array_equal(got, want)
    assert list(pf.predict_columns({C.CUSTOMER_ID: [10**9]})["status"]) == ["unknown_customer"]


def test_as_of_spellings_in_one_batch_all_parse_and_a_bad_one_is_named(served):
    """Merged requests spell timestamps differently (pydantic drops zero microseconds):
    each must keep its own moment, and a value that is no timestamp is an error."""
    sp, pf, end = served
    cid = int(pf.model.snapshot.loc[pf.model.snapshot[F.AS_OF] == end, C.CUSTOMER_ID].iloc[0])
    day = str(end.date())
    out = pf.predict_columns(
        {
            C.CUSTOMER_ID: [cid, cid, cid],
            F.AS_OF: [f"{day}T00:00:00", f"{day}T00:00:00.000000", day],
        }
    )
    assert list(out["status"]) == ["ok"] * 3
    assert len(set(np.asarray(out[F.AS_OF]).tolist())) == 1
    with pytest.raises(ValueError, match="as_of"):
        pf.predict_columns({C.CUSTOMER_ID: [cid], F.AS_OF: ["next tuesday"]})
