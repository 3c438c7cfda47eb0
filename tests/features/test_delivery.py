"""Delivery features: as-of correctness (no leakage) and online == offline."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.models.delivery.dataset import base_frame, labelled


@pytest.fixture(scope="module")
def tables(tiny_world):
    world, _path = tiny_world
    return world.tables


@pytest.fixture(scope="module")
def history(tables):
    return fd.DeliveryHistory.from_tables(tables[C.ORDERS], tables[C.SHIPMENTS])


@pytest.fixture(scope="module")
def rows(tables):
    base = base_frame(tables)
    cut = base[C.ORDERED_AT].quantile(0.7)
    lo = cut - pd.Timedelta(days=10)
    rng = np.random.default_rng(0)
    return labelled(base, lo, cut, cut, 30, tables[C.TRACKING_EVENTS], 1, rng)


def _request_dicts(rows: pd.DataFrame) -> list[dict]:
    keep = [
        C.WAREHOUSE,
        C.ORIGIN_REGION,
        C.DEST_REGION,
        C.DISTANCE_KM,
        C.CARRIER,
        C.SERVICE_LEVEL,
        C.ORDERED_AT,
        C.WEIGHT_KG,
        C.PROMISED_DAYS,
        fd.AS_OF,
        fd.PICKED_UP_AT,
        fd.LAST_SCAN_TYPE,
        fd.LAST_SCAN_REGION,
        fd.LAST_SCAN_AT,
        fd.N_SCANS,
    ]
    out = []
    for rec in rows[[c for c in keep if c in rows.columns]].to_dict("records"):
        out.append({k: (None if pd.isna(v) else v) for k, v in rec.items()})
    return out


def test_online_features_equal_offline(rows, history):
    sample = pd.concat(
        [rows[rows["stage"] == "checkout"].head(15), rows[rows["stage"] == "transit"].head(15)]
    ).reset_index(drop=True)
    offline = fd.delivery_features(sample, history)
    for i, req in enumerate(_request_dicts(sample)):
        online = fd.delivery_features(req, history)
        assert len(online) == 1
        pd.testing.assert_frame_equal(
            online.reset_index(drop=True), offline.iloc[[i]].reset_index(drop=True)
        )


def test_snapshot_gives_same_features_after_its_time(tables, history, rows):
    """The serving snapshot (last k per key) answers later requests identically."""
    last = tables[C.ORDERS][C.ORDERED_AT].max()
    late = rows[rows["stage"] == "checkout"].head(10).copy()
    late[C.ORDERED_AT] = last + pd.Timedelta(days=40)
    full = fd.delivery_features(late, history)
    snap = fd.delivery_features(late, history.snapshot())
    pd.testing.assert_frame_equal(full, snap)
    assert len(history.snapshot().records) < len(history.records)


def test_future_events_change_nothing(tables, rows):
    """Plant deliveries that finish after each request's cutoff: features must not move."""
    orders, ships = tables[C.ORDERS], tables[C.SHIPMENTS]
    before = fd.delivery_features(rows, fd.DeliveryHistory.from_tables(orders, ships))
    cutoff = rows[fd.AS_OF].fillna(rows[C.ORDERED_AT]).max()
    # 1) absurdly slow parcels on every lane, ordered before the cutoff, delivered after.
    lanes = orders.drop_duplicates([C.WAREHOUSE, C.CARRIER, C.SERVICE_LEVEL, C.DEST_REGION])
    fake = lanes.copy()
    fake[C.ORDER_ID] = np.arange(10**9, 10**9 + len(fake))
    fake[C.ORDERED_AT] = cutoff - pd.Timedelta(hours=1)
    fship = ships.iloc[: len(fake)].copy()
    fship[C.ORDER_ID] = fake[C.ORDER_ID].to_numpy()
    fship[C.SHIPMENT_ID] = fake[C.ORDER_ID].to_numpy()
    fship[C.SHIPPED_AT] = cutoff + pd.Timedelta(days=1)
    fship[C.DELIVERED_AT] = cutoff + pd.Timedelta(days=25)
    # 2) every real parcel finished after the cutoff becomes 20 days later.
    ships2 = ships.copy()
    after = ships2[C.DELIVERED_AT] > cutoff
    ships2.loc[after, C.DELIVERED_AT] += pd.Timedelta(days=20)
    o2 = pd.concat([orders, fake], ignore_index=True)
    s2 = pd.concat([ships2, fship], ignore_index=True)
    # Only the index changes; fallbacks (lane medians, the mean a statistic takes for a
    # key without evidence) are fit-time constants.
    h1 = fd.DeliveryHistory.from_tables(orders, ships)
    h2 = fd.DeliveryHistory.from_frame(
        fd.DeliveryHistory.from_tables(o2, s2).records, h1.to_frame()[1]
    )
    after_ = fd.delivery_features(rows, h2)
    # The planted orders were *placed* before the cutoff, so their existence is known
    # (the weekly order counts see them); only their outcomes are not. Compare with a
    # history that has the same orders and no outcome for them.
    no_outcome = fship.assign(**{C.SHIPPED_AT: pd.NaT, C.DELIVERED_AT: pd.NaT})
    h0 = fd.DeliveryHistory.from_frame(
        fd.DeliveryHistory.from_tables(
            o2, pd.concat([ships, no_outcome], ignore_index=True)
        ).records,
        h1.to_frame()[1],
    )
    before = fd.delivery_features(rows, h0)
    pd.testing.assert_frame_equal(before, after_)
    # A sanity check that the planted events do matter once they are in the past.
    later = rows.head(50).copy()
    later[C.ORDERED_AT] = cutoff + pd.Timedelta(days=30)
    later[fd.AS_OF] = pd.NaT
    assert not np.allclose(
        fd.delivery_features(later, h1)["lane_log_days"],
        fd.delivery_features(later, h2)["lane_log_days"],
    )


def test_future_tracking_scans_change_nothing(tables, rows):
    tr = rows[rows["stage"] == "transit"].head(200).reset_index(drop=True)
    ev = tables[C.TRACKING_EVENTS]
    facts = fd.tracking_facts(tr, ev)
    planted = pd.DataFrame(
        {
            C.EVENT_ID: np.arange(10**9, 10**9 + len(tr)),
            C.SHIPMENT_ID: tr[C.SHIPMENT_ID].to_numpy(),
            C.EVENT_AT: (tr[fd.AS_OF] + pd.Timedelta(minutes=1)).to_numpy(),
            C.EVENT_TYPE: "out_for_delivery",
            C.LOCATION_REGION: tr[C.DEST_REGION].to_numpy(),
        }
    )
    facts2 = fd.tracking_facts(tr, pd.concat([ev, planted], ignore_index=True))
    pd.testing.assert_frame_equal(facts, facts2)


def test_missing_destination_is_a_clear_error(history):
    req = {
        C.WAREHOUSE: "wh_north",
        C.CARRIER: "swiftpost",
        C.SERVICE_LEVEL: "standard",
        C.ORDERED_AT: "2024-05-01 10:00",
    }
    with pytest.raises(fd.DeliveryInputError, match="dest_region"):
        fd.delivery_features(req, history)
    with pytest.raises(fd.DeliveryInputError, match="dest_region"):
        fd.delivery_features({**req, C.DEST_REGION: None}, history)


def _north_east_request(**extra) -> dict:
    """A checkout request on the wh_north -> east lane with only the required fields."""
    return {
        C.WAREHOUSE: "wh_north",
        C.DEST_REGION: "east",
        C.CARRIER: "swiftpost",
        C.SERVICE_LEVEL: "standard",
        C.ORDERED_AT: "2024-05-01 10:00",
        **extra,
    }


def test_negative_weight_is_a_clear_error(history):
    req = _north_east_request(**{C.WEIGHT_KG: -1.0})
    with pytest.raises(fd.DeliveryInputError, match="weight_kg"):
        fd.delivery_features(req, history)


def test_optional_fields_fall_back_to_lane_medians(history):
    req = _north_east_request()
    f = fd.delivery_features(req, history).iloc[0]
    assert f["distance_missing"] == 1.0 and f["weight_missing"] == 1.0
    assert f["log_distance"] == pytest.approx(np.log1p(history.lane_distance["wh_north|east"]))
    assert f[C.ORIGIN_REGION] == "north"


def test_calendar_features():
    h = fd.DeliveryHistory(records=pd.DataFrame(columns=["stat", "key", "done_s", "value"]))
    req = {
        C.WAREHOUSE: "w",
        C.DEST_REGION: "d",
        C.CARRIER: "c",
        C.SERVICE_LEVEL: "s",
        C.ORDERED_AT: pd.Timestamp("2024-12-20 18:00"),  # a Friday, peak, 4 days to Xmas Eve
    }
    f = fd.delivery_features(req, h).iloc[0]
    assert f["weekday"] == 4 and f["weekend_order"] == 1.0
    assert f["is_peak"] == 1.0 and f["days_to_holiday"] == 4 and f["holiday_soon"] == 1.0
    assert f["hour"] == pytest.approx(18.0)
    assert f["lane_n"] == 0.0  # no history: the count says so, the mean falls back


def test_future_hub_scans_change_nothing(tables, rows):
    """Weekly statistics use hub scans; a scan after a request's cutoff must not count."""
    orders, ships, ev = tables[C.ORDERS], tables[C.SHIPMENTS], tables[C.TRACKING_EVENTS]
    h1 = fd.DeliveryHistory.from_tables(orders, ships, ev)
    before = fd.delivery_features(rows, h1)
    cutoff = rows[fd.AS_OF].fillna(rows[C.ORDERED_AT]).max()
    ev2 = ev.copy()
    late = (ev2[C.EVENT_TYPE] == fd.HUB_SCAN) & (ev2[C.EVENT_AT] > cutoff)
    ev2.loc[late, C.EVENT_AT] += pd.Timedelta(days=9)
    h2 = fd.DeliveryHistory.from_frame(
        fd.DeliveryHistory.from_tables(orders, ships, ev2).records, h1.to_frame()[1]
    )
    pd.testing.assert_frame_equal(before, fd.delivery_features(rows, h2))
    # Sanity: the scans are used at all (a history without them answers differently).
    h0 = fd.DeliveryHistory.from_tables(orders, ships)
    assert not np.allclose(
        before["dest_wk_log_hub"], fd.delivery_features(rows, h0)["dest_wk_log_hub"]
    )


def test_json_timestamps_parse_like_pandas_and_bad_ones_are_named():
    """The numpy fast path for JSON timestamps agrees with pandas on every UTC spelling,
    leaves offsets to pandas, and a bad value still names its field."""
    raw = [
        "2025-11-20T10:00:00Z",
        "2025-11-20 10:00:00",
        "2025-11-20T10:00:00.250Z",
        "2025-11-20T12:00:00+02:00",
        "2025-11-20T05:00:00-05:00",
        "2025-11-20",
    ]
    got = [fd._time_col({"t": np.array([v], dtype=object)}, "t", 1, True)[0] for v in raw]
    want = [
        int(pd.Timestamp(v).tz_localize(None).timestamp())
        if pd.Timestamp(v).tzinfo is None
        else int(pd.Timestamp(v).timestamp())
        for v in raw
    ]
    assert got == want
    batch = fd._time_col({"t": np.array(raw[:3], dtype=object)}, "t", 3, True)
    assert list(batch) == want[:3]
    with pytest.raises(fd.DeliveryInputError, match="ordered_at"):
        fd._time_col(
            {"ordered_at": np.array(["next tuesday"], dtype=object)}, "ordered_at", 1, True
        )
    parsed = fd.parse_times({"ordered_at": np.array(raw[:1], dtype=object)}, 1)
    assert parsed["ordered_at"].dtype == np.dtype("datetime64[s]")
    assert int(parsed["ordered_at"].astype(np.int64)[0]) == want[0]


def test_missing_timestamps_merged_with_present_ones_keep_the_fast_path():
    """A checkout row (no as_of) batched with transit rows: None is NaT, not an error."""
    raw = np.array(["2025-11-20T10:00:00", None, "2025-11-20T10:00:00.500000"], dtype=object)
    got = fd._time_col({"as_of": raw}, "as_of", 3, False)
    assert got[1] == fd.NAT and got[0] == got[2] == int(
        pd.Timestamp("2025-11-20T10:00").timestamp()
    )
