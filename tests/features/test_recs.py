"""Recommender features: point in time, online == offline, targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features.recs import (
    REPEAT_FEATURES,
    next_purchases,
    repeat_features,
    repeat_features_arrays,
    repurchase_intervals,
    sequence_arrays,
    sequences,
    to_days,
)


def _frame(rows):
    return pd.DataFrame(
        rows, columns=[C.CUSTOMER_ID, C.PRODUCT_ID, C.EVENT_AT, C.EVENT_TYPE]
    ).assign(**{C.EVENT_AT: lambda d: pd.to_datetime(d[C.EVENT_AT])})


@pytest.fixture()
def coffee():
    """Customer 1 buys coffee 5 every 30 days and once views a grinder."""
    rows = [(1, 5, f"2024-0{m}-01", "purchase") for m in range(1, 6)]
    rows += [(1, 9, "2024-05-20", "view"), (1, 7, "2024-02-10", "renewal")]
    rows += [(2, 5, "2024-03-03", "purchase"), (2, 6, "2024-06-01", "purchase")]
    return _frame(rows)


def test_sequences_use_only_events_before_the_cutoff(coffee):
    cut = pd.Timestamp("2024-04-15")
    seq = sequences(coffee, cut)
    one = seq.set_index(C.CUSTOMER_ID).loc[1]
    assert one["product_ids"] == [5, 5, 7, 5, 5]
    assert one["event_types"][2] == "renewal"
    assert np.isnan(one["gap_days"][0]) and one["gap_days"][1] == pytest.approx(31.0)
    arr = sequence_arrays(coffee, cut)
    assert (arr.days < to_days(cut)).all()
    # Asking for a customer without events gives an empty history, not an error.
    arr2 = sequence_arrays(coffee, cut, customer_ids=np.array([2, 99]))
    assert arr2.lengths().tolist() == [1, 0]


def test_repeat_features_are_due_around_the_learned_interval(coffee):
    iv = repurchase_intervals(coffee)
    assert iv.loc[5, "interval_days"] == pytest.approx(30.5, abs=1.0)
    f = repeat_features(coffee, pd.Timestamp("2024-05-31"), iv).set_index(
        [C.CUSTOMER_ID, C.PRODUCT_ID]
    )
    due = f.loc[(1, 5)]
    assert 0.9 < due["due_ratio"] < 1.1 and due["due_closeness"] > 0.8
    assert f.loc[(1, 9), "viewed_recently"] == 0.0  # viewed 11 days ago
    early = repeat_features(coffee, pd.Timestamp("2024-05-05"), iv).set_index(
        [C.CUSTOMER_ID, C.PRODUCT_ID]
    )
    assert early.loc[(1, 5), "due_ratio"] < 0.3


def test_online_features_equal_offline_features(coffee):
    iv = repurchase_intervals(coffee)
    now = pd.Timestamp("2024-05-22")
    off = repeat_features(coffee, now, iv)
    off = off[off[C.CUSTOMER_ID] == 1].set_index(C.PRODUCT_ID)[REPEAT_FEATURES]
    one = coffee[(coffee[C.CUSTOMER_ID] == 1) & (coffee[C.EVENT_AT] < now)]
    seq = sequence_arrays(one)
    lookup = np.full(20, np.nan)
    lookup[iv.index.to_numpy()] = iv["interval_days"].to_numpy()
    rate = np.zeros(20)
    rate[iv.index.to_numpy()] = iv["repeat_rate"].to_numpy()
    uniq, X = repeat_features_arrays(
        seq.items, seq.types, seq.days, to_days(now), lookup, rate, iv.attrs["global_interval_days"]
    )
    on = pd.DataFrame(X, index=uniq, columns=REPEAT_FEATURES)
    pd.testing.assert_frame_equal(on.sort_index(), off.sort_index(), check_names=False, atol=1e-9)


def test_next_purchases_skip_renewals_and_flag_repeats(coffee):
    extra = _frame([(1, 7, "2024-06-02", "renewal"), (1, 5, "2024-06-03", "purchase")])
    df = pd.concat([coffee, extra], ignore_index=True)
    t = next_purchases(df, pd.Timestamp("2024-05-25"), 30).set_index(C.CUSTOMER_ID)
    assert t.loc[1, C.PRODUCT_ID] == 5 and bool(t.loc[1, "is_repeat"])
    assert t.loc[2, C.PRODUCT_ID] == 6 and not bool(t.loc[2, "is_repeat"])


def test_bad_interactions_name_the_field(coffee):
    with pytest.raises(ValueError, match=C.EVENT_TYPE):
        sequence_arrays(coffee.assign(**{C.EVENT_TYPE: "click"}))
    with pytest.raises(ValueError, match=C.PRODUCT_ID):
        sequence_arrays(coffee.drop(columns=[C.PRODUCT_ID]))
