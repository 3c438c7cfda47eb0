"""Theme features for churn are computed as of each snapshot: nothing later leaks in."""

from __future__ import annotations

import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.feedback.churn_lift import FEATURES, theme_features


def _ts(day: str) -> pd.Timestamp:
    return pd.Timestamp(day)


def test_theme_features_count_only_texts_and_orders_before_the_snapshot():
    tagged = pd.DataFrame(
        {
            C.CUSTOMER_ID: [1, 1, 1, 2, 3],
            C.PRODUCT_ID: [10, 10, 11, 10, 10],
            C.CREATED_AT: [
                _ts("2025-01-05"),  # old: counts in totals, not in the last 90 days
                _ts("2025-05-20"),
                _ts("2025-06-10"),  # after the snapshot: must not count
                _ts("2025-05-25"),
                _ts("2025-05-28"),
            ],
            "p_positive": [0.9, 0.1, 0.0, 0.2, 0.8],
            "negative": [False, True, True, True, False],
        }
    )
    order_items = pd.DataFrame(
        {
            C.CUSTOMER_ID: [2, 2],
            C.PRODUCT_ID: [10, 10],
            C.ORDERED_AT: [_ts("2025-05-01"), _ts("2025-06-15")],
        }
    )
    keys = pd.DataFrame({C.CUSTOMER_ID: [1, 2, 4], "as_of": _ts("2025-06-01")})
    f = theme_features(tagged, order_items, keys).set_index(C.CUSTOMER_ID)
    assert list(f.columns) == ["as_of", *FEATURES]
    assert f.loc[1, "fb_texts_total"] == 2
    assert f.loc[1, "fb_negative_3m"] == 1
    assert f.loc[1, "fb_negative_share"] == pytest.approx(0.5)
    assert f.loc[1, "fb_min_p_positive_3m"] == pytest.approx(0.1)
    # product 10's recent texts (customers 1, 2, 3): two of three in negative themes
    assert f.loc[2, "fb_product_negative_rate"] == pytest.approx(2 / 3)
    assert f.loc[1, "fb_product_negative_rate"] == 0  # ordered nothing in the window
    # a customer who wrote nothing: zeros, and the unhappiest recent text defaults to 1
    assert f.loc[4, FEATURES[:3]].tolist() == [0, 0, 0] and f.loc[4, FEATURES[3]] == 1
