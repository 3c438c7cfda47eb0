"""Olist adapter: both timestamp layouts, joins, clear errors."""

from __future__ import annotations

import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.data.adapters import olist as ol

ISO = {
    "order_id": ["a", "b"],
    "customer_id": ["c1", "c2"],
    "order_status": ["delivered", "shipped"],
    "order_purchase_timestamp": ["2017-10-02 10:56:33", "2018-07-24 20:41:37"],
    "order_approved_at": ["2017-10-02 11:07:15", "2018-07-26 03:24:27"],
    "order_delivered_carrier_date": ["2017-10-04 19:55:00", "2018-07-26 14:31:00"],
    "order_delivered_customer_date": ["2017-10-10 21:25:13", ""],
    "order_estimated_delivery_date": ["2017-10-18 00:00:00", "2018-08-13 00:00:00"],
}
US = {
    **ISO,
    "order_purchase_timestamp": ["10/2/2017 10:56", "7/24/2018 20:41"],
    "order_approved_at": ["10/2/2017 11:07", "7/26/2018 3:24"],
    "order_delivered_carrier_date": ["10/4/2017 19:55", "7/26/2018 14:31"],
    "order_delivered_customer_date": ["10/10/2017 21:25", ""],
    "order_estimated_delivery_date": ["10/18/2017 0:00", "8/13/2018 0:00"],
}


def _write(tmp_path, orders: dict, customers: bool = True):
    pd.DataFrame(orders).to_csv(tmp_path / ol.ORDERS_FILE, index=False)
    if customers:
        pd.DataFrame(
            {
                "customer_id": ["c1"],
                "customer_unique_id": ["u1"],
                "customer_zip_code_prefix": [1],
                "customer_city": ["x"],
                "customer_state": ["SP"],
            }
        ).to_csv(tmp_path / ol.CUSTOMERS_FILE, index=False)
    return tmp_path


@pytest.mark.parametrize("layout", [ISO, US], ids=["iso", "m/d/yyyy"])
def test_both_timestamp_layouts(tmp_path, layout):
    df = ol.load_olist(_write(tmp_path, layout))
    a = df.set_index(C.ORDER_ID).loc["a"]
    assert a[C.ORDERED_AT].floor("min") == pd.Timestamp("2017-10-02 10:56")
    assert a[C.DELIVERED_AT].floor("min") == pd.Timestamp("2017-10-10 21:25")
    assert a[ol.ESTIMATE_DAYS] == 16
    assert a["customer_state"] == "SP"
    b = df.set_index(C.ORDER_ID).loc["b"]
    assert pd.isna(b[C.DELIVERED_AT]) and pd.isna(b["customer_state"])


def test_unparseable_timestamp_names_the_column(tmp_path):
    bad = {**US, "order_approved_at": ["10/2/2017 11:07", "yesterday"]}
    with pytest.raises(ValueError, match="order_approved_at"):
        ol.load_olist(_write(tmp_path, bad))


def test_missing_orders_file_is_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="olist_orders_dataset.csv"):
        ol.load_olist(tmp_path)


def test_canonical_frames(tmp_path):
    t = ol.to_canonical(ol.load_olist(_write(tmp_path, ISO)))
    o = t[C.ORDERS]
    assert list(o[C.DEST_REGION]) == ["SP", ol.UNKNOWN]
    assert list(o[C.PROMISED_DAYS]) == [16.0, 20.0]
    assert (o[C.CARRIER] == ol.CARRIER).all()


def test_shared_sample_is_thin_but_loads():
    from ppx.data.adapters import dataset_path

    try:
        folder = dataset_path("olist_sample")
    except FileNotFoundError as err:
        pytest.skip(str(err))
    df = ol.load_olist(folder)
    cov = ol.coverage_report(df)
    assert len(df) > 9000
    assert 0.05 < cov["joined_customer_state"] < 0.2  # about 10 % join to a state
    assert df[C.ORDERED_AT].notna().all()


def test_orders_without_a_stated_outcome_are_counted_and_warned_about(tmp_path, caplog):
    rows = {
        "order_id": ["ok", "undated", "stale", "recent", "broken"],
        "customer_id": ["c1", "c2", "c3", "c4", "c5"],
        "order_status": ["delivered", "delivered", "shipped", "invoiced", "delivered"],
        "order_purchase_timestamp": [
            "2018-01-02 10:00:00",
            "2018-01-03 10:00:00",
            "2018-01-04 10:00:00",
            "2018-04-20 10:00:00",
            "2018-02-01 10:00:00",
        ],
        "order_approved_at": ["2018-01-02 11:00:00"] * 5,
        "order_delivered_carrier_date": ["2018-01-03 10:00:00", "", "", "", ""],
        "order_delivered_customer_date": [
            "2018-04-30 10:00:00",
            "",
            "",
            "",
            "2018-01-15 10:00:00",
        ],
        "order_estimated_delivery_date": ["2018-01-20 00:00:00"] * 5,
    }
    with caplog.at_level("WARNING", logger="ppx.data.adapters.olist"):
        df = ol.load_olist(_write(tmp_path, rows))
    kinds = {k: df.loc[m, C.ORDER_ID].tolist() for k, m in ol.unresolved_orders(df).items()}
    assert kinds == {
        "delivered_without_date": ["undated"],
        "delivered_before_purchase": ["broken"],
        "open_stale": ["stale"],
        "open_recent": ["recent"],
    }
    text = caplog.text
    assert "1 orders status 'delivered' without" in text and "undated" in text
    assert "1 orders still open" in text and "stale" in text
    assert "1 orders delivered before their purchase" in text and "broken" in text
    assert ol.data_end(df) == pd.Timestamp("2018-04-30 10:00:00")
