"""Churn features: point-in-time correctness, fidelity to the world's hazard, labels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features import churn as F


@pytest.fixture(scope="module")
def history(tiny_world):
    world, _ = tiny_world
    return F.history_tables(world.tables)


@pytest.fixture(scope="module")
def snapshot(history):
    return F.month_snapshots(history)[-4]


def _plant_future(history, cid, sid, t, cancel=True):
    """Every kind of event the features read, all at or after ``t``."""
    h = {k: v.copy() for k, v in history.items()}
    later = t + pd.Timedelta(days=3)

    def add(name, row):
        h[name] = pd.concat([h[name], pd.DataFrame([row])], ignore_index=True)

    add(
        "deliveries",
        {
            C.CUSTOMER_ID: cid,
            C.ORDERED_AT: t,
            C.DELIVERED_AT: later,
            C.ORDER_VALUE: 50.0,
            "late": True,
        },
    )
    add("claims", {C.CUSTOMER_ID: cid, C.CLAIMED_AT: later})
    add("returns", {C.CUSTOMER_ID: cid, C.REQUESTED_AT: later})
    add("reviews", {C.CUSTOMER_ID: cid, C.CREATED_AT: t, C.RATING: 1})
    add(
        "loyalty",
        {C.CUSTOMER_ID: cid, C.EVENT_AT: t, C.EVENT_TYPE: "redeem", C.POINTS: -500, C.TIER: None},
    )
    add(
        "loyalty",
        {
            C.CUSTOMER_ID: cid,
            C.EVENT_AT: later,
            C.EVENT_TYPE: "tier_change",
            C.POINTS: 0,
            C.TIER: "platinum",
        },
    )
    add(
        "messages",
        {
            C.CUSTOMER_ID: cid,
            C.SENT_AT: t,
            C.DIRECTION: "inbound",
            C.MESSAGE_TYPE: "support_contact",
            C.OPENED: True,
            C.CLICKED: False,
        },
    )
    add(
        "messages",
        {
            C.CUSTOMER_ID: cid,
            C.SENT_AT: later,
            C.DIRECTION: "outbound",
            C.MESSAGE_TYPE: "promotion",
            C.OPENED: True,
            C.CLICKED: True,
        },
    )
    for kind in ("skip", "pause", "price_change"):
        add(
            "sub_events",
            {
                C.SUBSCRIPTION_ID: sid,
                C.EVENT_AT: later,
                C.EVENT_TYPE: kind,
                C.OLD_VALUE: 10.0,
                C.NEW_VALUE: 20.0,
            },
        )
    subs = h["subs"]
    if cancel:
        subs.loc[subs[C.SUBSCRIPTION_ID] == sid, C.CANCELLED_AT] = later
    return h


def test_future_events_change_nothing(history, snapshot):
    before = F.churn_features(history, snapshot)
    row = before.iloc[0]
    planted = _plant_future(history, int(row[C.CUSTOMER_ID]), int(row[C.SUBSCRIPTION_ID]), snapshot)
    after = F.churn_features(planted, snapshot)
    pd.testing.assert_frame_equal(before, after)


def test_past_events_do_change_features(history, snapshot):
    """The leakage test above would pass vacuously if planting did nothing at all."""
    before = F.churn_features(history, snapshot)
    row = before.iloc[0]
    t = snapshot - pd.Timedelta(days=10)
    planted = _plant_future(
        history, int(row[C.CUSTOMER_ID]), int(row[C.SUBSCRIPTION_ID]), t, cancel=False
    )
    after = (
        F.churn_features(planted, snapshot).set_index(C.SUBSCRIPTION_ID).loc[row[C.SUBSCRIPTION_ID]]
    )
    assert after["late_1m"] == row["late_1m"] + 1
    assert after["any_claim_3m"] == 1 and after["any_redeem_3m"] == 1
    assert after["support_contacts_3m"] == row["support_contacts_3m"] + 1


def test_online_matches_offline(history, snapshot):
    offline = F.churn_features(history, snapshot)
    for _, row in offline.head(5).iterrows():
        one = F.churn_features(F.restrict_history(history, [row[C.CUSTOMER_ID]]), snapshot)
        pd.testing.assert_series_equal(one.iloc[0], row, check_names=False, check_dtype=False)


def test_features_reproduce_world_hazard_drivers(tiny_world, history):
    """The observable drivers, weighted as in the world, reproduce its true hazard.

    Only the latent engagement and frailty are unobservable; adding them back from the
    truth must give the world's hazard for almost every subscription-month.
    """
    world, _ = tiny_world
    p = world.params
    frame = pd.concat(
        [F.churn_features(history, t) for t in F.month_snapshots(history)], ignore_index=True
    )
    truth = world.truth[C.TRUTH_SUBSCRIPTION_MONTHS].rename(columns={C.MONTH: F.AS_OF})
    truth[F.AS_OF] = truth[F.AS_OF].astype("datetime64[ns]")
    m = frame.merge(truth, on=[C.SUBSCRIPTION_ID, F.AS_OF]).merge(
        world.truth[C.TRUTH_CUSTOMERS][[C.CUSTOMER_ID, C.ENGAGEMENT, C.FRAILTY]], on=C.CUSTOMER_ID
    )
    assert len(m) > 0.95 * len(frame)
    skipped = ((m["skips_1m"] > 0) | (m["paused_1m"] > 0)).astype(float)
    x = (
        p.churn_base
        + p.churn_late_effect * m["late_2m_capped"]
        + p.churn_claim_effect * m["any_claim_3m"]
        + p.churn_low_review_effect * m["any_low_review_3m"]
        + p.churn_price_effect * m["price_increase_2m"]
        + p.churn_skip_effect * skipped
        + p.churn_redeem_effect * m["any_redeem_3m"]
        + p.churn_new_effect * m["tenure_under_90d"]
        + p.churn_engagement_effect * (m[C.ENGAGEMENT] - 0.4)
        + m[C.FRAILTY]
    )
    implied = 1 / (1 + np.exp(-x))
    agree = np.isclose(implied, m[C.TRUE_HAZARD], atol=1e-6)
    assert agree.mean() > 0.97


def test_labels_respect_censoring(history):
    snaps = F.month_snapshots(history)
    frame = F.churn_features(history, snaps[2])
    cut = snaps[3]
    lab = F.churn_labels(history, frame, observed_until=cut)
    # Nothing cancelled at or after the censoring time counts as a churn.
    cancel = history["subs"].set_index(C.SUBSCRIPTION_ID)[C.CANCELLED_AT]
    c = cancel.reindex(lab[C.SUBSCRIPTION_ID]).to_numpy()
    assert not ((lab["churn_90"].to_numpy() > 0) & ~(c < np.datetime64(cut))).any()
    # 60- and 90-day windows run past the cut: unknown unless a churn was seen.
    assert ((lab["observed_90"] == 0) == (lab["churn_90"] == 0)).all()
    assert (lab["observed_30"] == 1).all()
