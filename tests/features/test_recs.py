"""Recommender features: point in time, online == offline, targets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features.recs import (
    REPEAT_FEATURES,
    TYPE_CODES,
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


def test_many_users_repeat_features_equal_one_user_at_a_time():
    from ppx.features.recs import repeat_features_many

    rng = np.random.default_rng(3)
    interval = np.where(rng.random(30) < 0.3, np.nan, rng.uniform(5, 60, 30))
    rate = np.where(rng.random(30) < 0.2, np.nan, rng.random(30))
    users = []
    for n in (12, 0, 1, 40, 7):  # a user without events and one with a single event too
        types = rng.integers(1, 4, n)
        if n == 7:
            types[:] = TYPE_CODES["view"]  # only views: no purchase at all
        users.append((rng.integers(1, 30, n), types, rng.uniform(0, 300, n)))
    owner = np.repeat(np.arange(len(users)), [len(u[0]) for u in users])
    user, uniq, X = repeat_features_many(
        owner,
        *(np.concatenate([u[k] for u in users]) for k in range(3)),
        310.0,
        interval,
        rate,
        30.0,
    )
    for u, (items, types, days) in enumerate(users):
        one_uniq, one_X = repeat_features_arrays(items, types, days, 310.0, interval, rate, 30.0)
        np.testing.assert_array_equal(uniq[user == u], one_uniq)
        np.testing.assert_array_equal(X[user == u], one_X)


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


def test_item_theme_rates_use_only_texts_before_the_cutoff_and_shrink_small_counts():
    from ppx.features.recs import ITEM_THEME_FEATURES, item_theme_rates

    tagged = pd.DataFrame(
        {
            C.PRODUCT_ID: [1, 1, 1, 1, 2, 2],
            C.CREATED_AT: pd.to_datetime(
                [
                    "2025-01-10",  # old: counts overall, not in the last 90 days
                    "2025-05-20",
                    "2025-05-25",
                    "2025-06-10",  # after the cutoff: must not count
                    "2025-05-01",
                    "2025-05-02",
                ]
            ),
            "negative": [True, True, False, True, False, False],
            "p_positive": [0.1, 0.2, 0.9, 0.0, 0.8, 0.6],
        }
    )
    f = item_theme_rates(tagged, pd.Timestamp("2025-06-01"), np.array([1, 2, 3]), prior=0.0)
    assert list(f.columns) == ITEM_THEME_FEATURES
    assert f.loc[1, "item_negative_theme_rate"] == pytest.approx(2 / 3)
    assert f.loc[1, "item_negative_theme_rate_90d"] == pytest.approx(1 / 2)
    assert f.loc[2, "item_negative_theme_rate"] == 0.0
    assert f.loc[1, "item_mean_p_positive"] == pytest.approx(0.4)
    # a product nobody wrote about: with no prior it has no rate; with one, the catalogue's
    assert np.isnan(f.loc[3, "item_negative_theme_rate"])
    g = item_theme_rates(tagged, pd.Timestamp("2025-06-01"), np.array([1, 3]), prior=5.0)
    assert g.loc[3, "item_negative_theme_rate"] == pytest.approx(2 / 5)  # 2 of 5 texts
    # shrinkage pulls product 1's 2 of 3 toward the catalogue's 2 of 5
    assert 2 / 5 < g.loc[1, "item_negative_theme_rate"] < 2 / 3
    # moving the cutoff back drops the later texts
    early = item_theme_rates(tagged, pd.Timestamp("2025-05-21"), np.array([1]), prior=0.0)
    assert early.loc[1, "item_negative_theme_rate"] == 1.0
