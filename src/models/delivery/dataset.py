"""Labelled delivery frames from canonical tables, on a time split.

Rows are *requests* (the facts a caller would send) plus labels:

* ``y_day``: calendar-day offset between order and delivery (0 = same day), clipped
  to ``d_max``; for a parcel not delivered by the period's cutoff it is the first day
  not yet observed and ``event`` is 0 (right-censored: it arrives on or after it).
* ``start_day``: 0 at checkout; for an in-transit snapshot the day of ``as_of``
  (left-truncated: the parcel is known to arrive on or after that day).

Training and validation periods are labelled as of their cutoffs, the way a model
trained on that day would have seen them; lost parcels are left out (they never
deliver, and the exception scan that reveals them is a different question).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import delivery as fd

DAY_NS = 86_400 * 10**9


@dataclass
class Split:
    """Cutoffs of a time split: train < val_start <= val < test_start <= test < end."""

    val_start: pd.Timestamp
    test_start: pd.Timestamp
    end: pd.Timestamp


def time_split(orders: pd.DataFrame, val_months: int, test_months: int) -> Split:
    """The last ``test_months`` are test, the ``val_months`` before them validation."""
    last = orders[C.ORDERED_AT].max()
    end = (last + pd.Timedelta(seconds=1)).ceil("D")
    month_end = pd.Timestamp(year=last.year, month=last.month, day=1) + pd.DateOffset(months=1)
    test_start = month_end - pd.DateOffset(months=test_months)
    val_start = test_start - pd.DateOffset(months=val_months)
    return Split(pd.Timestamp(val_start), pd.Timestamp(test_start), pd.Timestamp(end))


def base_frame(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Orders joined with their shipment: request facts plus outcome timestamps."""
    o = tables[C.ORDERS]
    s = tables[C.SHIPMENTS][
        [C.ORDER_ID, C.SHIPMENT_ID, C.WEIGHT_KG, C.SHIPPED_AT, C.DELIVERED_AT, C.STATUS]
    ]
    df = o.merge(s, on=C.ORDER_ID, how="inner")
    return df.sort_values(C.ORDERED_AT, kind="stable").reset_index(drop=True)


def day_offset(t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
    """Calendar days between two timestamp arrays (floor of each to midnight)."""
    a = np.asarray(t0, dtype="datetime64[ns]").astype(np.int64) // DAY_NS
    b = np.asarray(t1, dtype="datetime64[ns]").astype(np.int64) // DAY_NS
    return b - a


REQUEST_COLUMNS = (
    C.ORDER_ID,
    C.SHIPMENT_ID,
    C.WAREHOUSE,
    C.ORIGIN_REGION,
    C.DEST_REGION,
    C.DISTANCE_KM,
    C.CARRIER,
    C.SERVICE_LEVEL,
    C.ORDERED_AT,
    C.WEIGHT_KG,
    C.PROMISED_DAYS,
)


def labelled(
    base: pd.DataFrame,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp,
    cutoff: pd.Timestamp,
    d_max: int,
    tracking_events: pd.DataFrame | None,
    transit_rows: int,
    rng: np.random.Generator,
    delivered_only: bool = False,
) -> pd.DataFrame:
    """Requests ordered in [lo, hi), labelled with what was known at ``cutoff``.

    Adds ``transit_rows`` in-transit snapshots per shipment (``as_of`` uniform between
    the order and the earlier of delivery and cutoff), with the tracking facts known
    at ``as_of``. ``delivered_only`` keeps only parcels delivered by the cutoff (test).
    """
    m = base[C.ORDERED_AT] < hi
    if lo is not None:
        m &= base[C.ORDERED_AT] >= lo
    df = base[m & (base[C.STATUS] != "lost")]
    delivered = df[C.DELIVERED_AT].notna().to_numpy() & (df[C.DELIVERED_AT] < cutoff).to_numpy()
    if delivered_only:
        df, delivered = df[delivered], delivered[delivered]
    t0 = df[C.ORDERED_AT].to_numpy()
    cut = np.full(len(df), np.datetime64(cutoff, "ns"))
    y_obs = np.where(
        delivered,
        day_offset(t0, df[C.DELIVERED_AT].fillna(cutoff).to_numpy()),
        day_offset(t0, cut),
    )
    out = df[[c for c in REQUEST_COLUMNS if c in df.columns]].reset_index(drop=True)
    out[C.PROMISED_DAYS] = df[C.PROMISED_DAYS].to_numpy(float)
    out["y_day"] = np.clip(y_obs, 0, d_max)
    out["event"] = delivered.astype(float)
    out["start_day"] = 0
    out["stage"] = "checkout"
    out[fd.AS_OF] = pd.NaT
    out["delivered_at"] = df[C.DELIVERED_AT].to_numpy()
    frames = [out]
    if transit_rows > 0 and tracking_events is not None:
        ends = np.where(delivered, df[C.DELIVERED_AT].fillna(cutoff).to_numpy(), cut)
        span = (ends - t0).astype("timedelta64[ns]").astype(np.int64)
        for _ in range(transit_rows):
            u = rng.uniform(0.02, 0.98, len(df))
            as_of = t0 + (u * span).astype("timedelta64[ns]")
            tr = out.copy()
            tr[fd.AS_OF] = as_of
            tr["stage"] = "transit"
            tr["start_day"] = np.minimum(day_offset(t0, as_of), d_max)
            ok = tr["start_day"].to_numpy() <= tr["y_day"].to_numpy()
            tr = tr[ok].reset_index(drop=True)
            facts = fd.tracking_facts(tr, tracking_events)
            frames.append(pd.concat([tr, facts], axis=1))
    res = pd.concat(frames, ignore_index=True)
    for c in (fd.PICKED_UP_AT, fd.LAST_SCAN_AT):
        if c in res.columns:
            res[c] = pd.to_datetime(res[c])
    return res


@dataclass
class DeliveryData:
    """Train / validation / test frames of one world and the history to featurise them."""

    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame
    split: Split
    history: object  # fd.DeliveryHistory over all completed shipments (as-of safe)


def make_data(
    tables: dict[str, pd.DataFrame],
    d_max: int = 30,
    val_months: int = 3,
    test_months: int = 3,
    transit_rows: int = 1,
    seed: int = 0,
) -> DeliveryData:
    """Time-split labelled frames: train as known at the validation start, validation
    as known at the test start, test with its final outcomes."""
    rng = np.random.default_rng(seed)
    base = base_frame(tables)
    split = time_split(base, val_months, test_months)
    events = tables.get(C.TRACKING_EVENTS)
    train = labelled(base, None, split.val_start, split.val_start, d_max, events, transit_rows, rng)
    val = labelled(base, split.val_start, split.test_start, split.test_start, d_max, events, 1, rng)
    test = labelled(
        base,
        split.test_start,
        split.end,
        split.end + pd.Timedelta(days=365),
        d_max,
        events,
        1,
        rng,
        delivered_only=True,
    )
    history = fd.DeliveryHistory.from_tables(
        tables[C.ORDERS], tables[C.SHIPMENTS], tables.get(C.TRACKING_EVENTS)
    )
    return DeliveryData(train=train, val=val, test=test, split=split, history=history)
