"""A store's replay marks the churned month from the observed cancellation date."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C
from ppx.rules.simulator.model_scores import churned_months
from ppx.rules.simulator.saves import cancel_requests


def _months() -> pd.DataFrame:
    return pd.DataFrame(
        {
            C.SUBSCRIPTION_ID: [1, 1, 1, 2, 2],
            C.MONTH: pd.to_datetime(
                ["2025-01-01", "2025-02-01", "2025-03-01", "2025-01-01", "2025-02-01"]
            ),
            C.TRUE_HAZARD: [0.1, 0.2, 0.3, 0.05, 0.06],
        }
    )


def test_the_cancellation_month_is_the_churned_one():
    subs = pd.DataFrame(
        {
            C.SUBSCRIPTION_ID: [1, 2],
            C.CANCELLED_AT: pd.to_datetime(["2025-02-17 10:00", None]),
        }
    )
    assert churned_months(_months(), subs).tolist() == [False, True, False, False, False]


def test_no_subscriptions_means_no_churned_month():
    empty = pd.DataFrame(columns=[C.SUBSCRIPTION_ID, C.MONTH, C.TRUE_HAZARD])
    assert churned_months(empty, pd.DataFrame()).tolist() == []
    assert not churned_months(_months(), pd.DataFrame({C.SUBSCRIPTION_ID: [1]})).any()


def test_cancel_requests_read_a_store_frame_without_subscriptions():
    """The frame ModelScores hands the replay for a store with no subscribers."""
    from types import SimpleNamespace

    months = pd.DataFrame(columns=[C.SUBSCRIPTION_ID, C.MONTH, C.TRUE_HAZARD])
    months[C.CHURNED] = churned_months(months, pd.DataFrame())
    empty_subs = pd.DataFrame(
        columns=[
            C.SUBSCRIPTION_ID,
            C.CUSTOMER_ID,
            C.PRODUCT_ID,
            C.PLAN,
            C.PRICE,
            C.STARTED_AT,
            C.CANCELLED_AT,
        ]
    )
    ev = SimpleNamespace(
        subs=empty_subs,
        params={},
        orders=pd.DataFrame(columns=[C.CUSTOMER_ID, C.DELIVERED_AT, C.PROMISED_DATE]),
        claims=pd.DataFrame(columns=[C.CUSTOMER_ID, C.CLAIMED_AT]),
        reviews=pd.DataFrame(columns=[C.CUSTOMER_ID, C.RATING, C.CREATED_AT]),
    )
    sub_events = pd.DataFrame(
        columns=[C.SUBSCRIPTION_ID, C.EVENT_TYPE, C.EVENT_AT, C.OLD_VALUE, C.NEW_VALUE]
    )
    out = cancel_requests(ev, {C.TRUTH_SUBSCRIPTION_MONTHS: months}, sub_events)
    assert len(out["when"]) == 0
