"""Point-in-time delivery features: what is known at checkout, and later in transit.

Every feature is computed *as of* a decision moment (``ordered_at`` at checkout, ``as_of``
for a parcel in transit) from shipments **completed strictly before** that moment, so a
model trained on these frames cannot peek at outcomes it would not have when serving.

The same function, :func:`delivery_features`, builds one request's features (a dict of
scalars or a one-row frame) and a million rows offline: the work is vectorised numpy
over the request columns plus binary searches into a :class:`DeliveryHistory`, an
index of completed shipments ("records") keyed by warehouse, lane, destination and
carrier. At training time the history is built from the whole table (each row still
only sees records finished before its own cutoff); at serving time it is rebuilt from a
small snapshot of the most recent records (:meth:`DeliveryHistory.snapshot`), logged
with the model so the served model is self-contained.

Recent statistics are over the last ``k`` completions of a key before the cutoff (a
count window, not a time window): a served model whose snapshot is a few days old
still sees the freshest evidence it has instead of an empty window.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.errors import RequestError
from ppx.data.times import unreadable, utc_times

# --- request columns --------------------------------------------------------------------
AS_OF = "as_of"  # decision moment of an in-transit re-estimate (None/NaT = checkout)
PICKED_UP_AT = "picked_up_at"
LAST_SCAN_TYPE = "last_scan_type"
LAST_SCAN_REGION = "last_scan_region"
LAST_SCAN_AT = "last_scan_at"
N_SCANS = "n_scans"
SLA_DAYS = C.PROMISED_DAYS  # the carrier's / retailer's own promise, known at checkout

CATEGORICAL = (C.WAREHOUSE, C.ORIGIN_REGION, C.DEST_REGION, C.CARRIER, C.SERVICE_LEVEL)
TRANSIT_CATEGORICAL = (LAST_SCAN_TYPE,)
NO_SCAN = "none"
HUB_SCAN = "hub_scan"

# Numeric feature columns produced by :func:`delivery_features`, in a fixed order.
NUMERIC = (
    "log_distance",
    "distance_missing",
    "weight_kg",
    "weight_missing",
    "sla_days",
    "weekday",
    "weekend_order",
    "hour",
    "frac_of_day",
    "days_to_holiday",
    "holiday_soon",
    "is_peak",
    "wh_handling_days",
    "wh_n",
    "lane_log_days",
    "lane_log_days_sd",
    "lane_n",
    "dest_log_days",
    "dest_n",
    "carrier_log_days",
    "carrier_n",
    "dest_wk_log_handling",
    "dest_wk_h_n",
    "wh_wk_log_handling",
    "wh_wk_h_n",
    "dest_wk_log_days",
    "dest_wk_d_n",
    "lane_wk_log_handling",
    "lane_wk_h_n",
    "dest_log_handling",
    "wh_log_handling",
    "dest_wk_log_handling_vs_prior",
    "wh_wk_log_handling_vs_prior",
    "dest_wk_log_days_vs_prior",
    "lane_wk_log_handling_vs_prior",
    "dest_wk_log_hub",
    "dest_wk_hub_n",
    "wh_wk_log_hub",
    "wh_wk_hub_n",
    "dest_wk_log_hub_vs_prior",
    "wh_wk_log_hub_vs_prior",
    "dest_wk_h_done_vs_prior",
    "dest_wk_hub_done_vs_prior",
    "wh_wk_h_done_vs_prior",
    "wh_wk_hub_done_vs_prior",
    "in_transit",
    "elapsed_days",
    "elapsed_day_index",
    "since_pickup_days",
    "picked_up",
    "last_scan_at_dest",
    "hours_since_scan",
    "n_scans",
)

# Public holidays (month, day) that slow carriers down around them; the synthetic
# world uses the same calendar. Peak season is Nov 20 - Dec 23.
DEFAULT_HOLIDAYS: tuple[tuple[int, int], ...] = (
    (1, 1),
    (2, 14),
    (5, 12),
    (12, 24),
    (12, 25),
    (12, 26),
    (12, 31),
)
HOLIDAY_HORIZON = 5  # "holiday soon": a holiday within the next 0..5 days
SECONDS_PER_DAY = 86_400
_KEY_SHIFT = 34  # record key code << 34 | seconds since epoch (fits int64 until 2514)


class DeliveryInputError(RequestError):
    """A delivery request is malformed; the message names the field."""


# --- statistics over completed shipments ------------------------------------------------

ORDER_WEEK = "order_week"  # derived key: calendar week (Monday-based) of the order

#: stat name -> (key columns, value name, window k). Values: ``handling_days``
#: (order -> pick-up, finished at ``shipped_at``), ``log_days`` (order -> doorstep,
#: finished at ``delivered_at``), and ``rel_handling`` / ``rel_days``: the same in
#: log units relative to the order's own promise (``log(days / promised_days)``), which
#: takes out the carrier / service / distance mix of a small sample.
#:
#: The ``*_wk_*`` statistics are keyed by the *order's* calendar week: "how slow are
#: this week's parcels to this region / from this warehouse so far". Weekly shocks
#: (weather at the destination, load at the warehouse) hit every parcel ordered in a
#: week, and handling (pick-up) finishes within hours, so the current week's pick-ups
#: reveal the shock long before its deliveries do. Long-run ``dest_h`` / ``wh_h`` are
#: the reference the network compares them with.
STATS: dict[str, tuple[tuple[str, ...], str, int]] = {
    "wh": ((C.WAREHOUSE,), "handling_days", 200),
    "lane": ((C.WAREHOUSE, C.CARRIER, C.SERVICE_LEVEL, C.DEST_REGION), "log_days", 50),
    "dest": ((C.DEST_REGION,), "log_days", 200),
    "carrier": ((C.CARRIER, C.SERVICE_LEVEL), "log_days", 300),
    "dest_wk_h": ((C.DEST_REGION, ORDER_WEEK), "rel_handling", 5000),
    "wh_wk_h": ((C.WAREHOUSE, ORDER_WEEK), "rel_handling", 5000),
    "dest_wk_d": ((C.DEST_REGION, ORDER_WEEK), "rel_days", 5000),
    "lane_wk_h": ((C.WAREHOUSE, C.DEST_REGION, ORDER_WEEK), "rel_handling", 5000),
    "dest_wk_hub": ((C.DEST_REGION, ORDER_WEEK), "rel_hub", 5000),
    "wh_wk_hub": ((C.WAREHOUSE, ORDER_WEEK), "rel_hub", 5000),
    "dest_wk_o": ((C.DEST_REGION, ORDER_WEEK), "ordered", 10000),
    "wh_wk_o": ((C.WAREHOUSE, ORDER_WEEK), "ordered", 10000),
    "dest_h": ((C.DEST_REGION,), "rel_handling", 1000),
    "wh_h": ((C.WAREHOUSE,), "rel_handling", 2000),
}
#: stat -> (mean feature, count feature or None, sd feature or None)
STAT_FEATURES: dict[str, tuple[str, str | None, str | None]] = {
    "wh": ("wh_handling_days", "wh_n", None),
    "lane": ("lane_log_days", "lane_n", "lane_log_days_sd"),
    "dest": ("dest_log_days", "dest_n", None),
    "carrier": ("carrier_log_days", "carrier_n", None),
    "dest_wk_h": ("dest_wk_log_handling", "dest_wk_h_n", None),
    "wh_wk_h": ("wh_wk_log_handling", "wh_wk_h_n", None),
    "dest_wk_d": ("dest_wk_log_days", "dest_wk_d_n", None),
    "lane_wk_h": ("lane_wk_log_handling", "lane_wk_h_n", None),
    "dest_wk_hub": ("dest_wk_log_hub", "dest_wk_hub_n", None),
    "wh_wk_hub": ("wh_wk_log_hub", "wh_wk_hub_n", None),
    "dest_h": ("dest_log_handling", None, None),
    "wh_h": ("wh_log_handling", None, None),
}
#: Share of the week's orders so far whose pick-up / hub scan has happened, minus the
#: same share at the same point of the prior weeks (a survival view of the week: parcels
#: still waiting count too, not only the completed ones).
DONE_SHARES: dict[str, str] = {
    "dest_wk_h": "dest_wk_o",
    "dest_wk_hub": "dest_wk_o",
    "wh_wk_h": "wh_wk_o",
    "wh_wk_hub": "wh_wk_o",
}
WEEKLY_STATS = tuple(s for s, (keys, _v, _k) in STATS.items() if ORDER_WEEK in keys)
#: A week's statistic so far is biased (the first pick-ups of a week are the fast
#: ones), so each weekly statistic is also compared with the same statistic of the
#: previous PRIOR_WEEKS weeks *at the same point of their week* (cutoff - 7 w days):
#: ``<stat>_vs_prior`` = this week so far minus those weeks so far (0 without evidence).
PRIOR_WEEKS = 4


def week_index(seconds: np.ndarray) -> np.ndarray:
    """Monday-based calendar week number of epoch seconds (1970-01-01 was a Thursday)."""
    return (np.floor_divide(np.asarray(seconds, np.int64), SECONDS_PER_DAY) + 3) // 7


_JOIN_ROWS = 64  # up to this many rows keys are joined in Python (numpy's char ops cost more)


def _key_string(frame: Mapping[str, np.ndarray], cols: tuple[str, ...]) -> np.ndarray:
    """``"a|b|..."`` key of each row from the ``cols`` columns of ``frame``."""
    return np.asarray(_keys(frame, cols))


def _keys(frame: Mapping[str, np.ndarray], cols: tuple[str, ...]) -> np.ndarray | list[str]:
    """:func:`_key_string` as a list for a serving batch (what the look-ups iterate)."""
    first = np.asarray(frame[cols[0]])
    if len(first) <= _JOIN_ROWS:
        parts = [np.asarray(frame[c]).tolist() for c in cols]
        return ["|".join(map(str, row)) for row in zip(*parts, strict=True)]
    parts = [np.asarray(frame[c]).astype(str) for c in cols]
    out = parts[0]
    for p in parts[1:]:
        out = np.char.add(np.char.add(out, "|"), p)
    return out


def _to_seconds(values: Any) -> np.ndarray:
    """Timestamps (datetime64 array, Series, strings, pd.Timestamp) -> int64 epoch s.

    Missing values become ``INT64_MIN`` sentinels (checked by callers).
    """
    arr = np.asarray(values)
    if arr.dtype.kind == "M":
        sec = arr.astype("datetime64[s]")
    elif arr.dtype.kind in "iu":
        return arr.astype(np.int64)
    else:
        sec = pd.to_datetime(pd.Series(arr.ravel()), errors="raise").to_numpy()
        if getattr(sec.dtype, "tz", None) is not None:  # pragma: no cover - tz-aware input
            sec = pd.Series(sec).dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
        sec = sec.astype("datetime64[s]")
    return sec.astype(np.int64)


NAT = np.iinfo(np.int64).min


def completed_records(
    orders: pd.DataFrame, shipments: pd.DataFrame, tracking_events: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (statistic, finished shipment): when it finished and its value.

    Handling (order -> pick-up) finishes at ``shipped_at``; a delivery (order ->
    doorstep, in log days) finishes at ``delivered_at``; the first ``hub_scan`` of a
    parcel (from ``tracking_events``, if given) at that scan. Parcels still in flight or
    lost have no record of what has not happened yet: it is not evidence of anything.
    """
    cols = [C.ORDER_ID, C.ORDERED_AT, C.WAREHOUSE, C.DEST_REGION, C.CARRIER, C.SERVICE_LEVEL]
    if C.PROMISED_DAYS in orders.columns:
        cols.append(C.PROMISED_DAYS)
    sh = shipments[[C.ORDER_ID, C.SHIPMENT_ID, C.SHIPPED_AT, C.DELIVERED_AT]]
    df = orders[cols].merge(sh, on=C.ORDER_ID, how="inner")
    hub_at = pd.Series(pd.NaT, index=df.index, dtype="datetime64[ns]")
    if tracking_events is not None and len(tracking_events):
        ev = tracking_events[tracking_events[C.EVENT_TYPE] == HUB_SCAN]
        first = ev.groupby(C.SHIPMENT_ID)[C.EVENT_AT].min()
        hub_at = pd.Series(first.reindex(df[C.SHIPMENT_ID].to_numpy()).to_numpy(), index=df.index)
    df["_hub_at"] = hub_at
    t0 = _to_seconds(df[C.ORDERED_AT].to_numpy())
    cols_all = {c: df[c].to_numpy() for c in cols}
    cols_all[ORDER_WEEK] = week_index(t0)
    promised = (
        df[C.PROMISED_DAYS].to_numpy(float)
        if C.PROMISED_DAYS in df.columns
        else np.full(len(df), np.nan)
    )
    frames = []
    for stat, (keys, value, _k) in STATS.items():
        done_col = (
            C.ORDERED_AT
            if value == "ordered"
            else C.DELIVERED_AT
            if value in ("log_days", "rel_days")
            else "_hub_at"
            if value == "rel_hub"
            else C.SHIPPED_AT
        )
        done = df[done_col].to_numpy()
        ok = ~pd.isna(done)
        if value.startswith("rel_"):
            ok &= promised > 0  # relative to the promise: rows without one are no evidence
        done_s = _to_seconds(done[ok])
        days = (done_s - t0[ok]) / SECONDS_PER_DAY
        if value == "ordered":
            val = np.zeros(len(days))  # only the count matters
        elif value == "handling_days":
            val = days
        elif value == "rel_handling":
            val = np.log(np.maximum(days, 0.01) / promised[ok])
        elif value in ("rel_days", "rel_hub"):
            val = np.log(np.maximum(days, 0.05) / promised[ok])
        else:
            val = np.log(np.maximum(days, 0.05))
        key = _key_string({c: cols_all[c][ok] for c in keys}, keys)
        frames.append(pd.DataFrame({"stat": stat, "key": key, "done_s": done_s, "value": val}))
    return pd.concat(frames, ignore_index=True)


@dataclass
class _StatIndex:
    codes: dict[str, int]
    combined: np.ndarray  # sorted (code << shift | done_s)
    csum: np.ndarray  # cumulative sum of values, leading 0
    csq: np.ndarray  # cumulative sum of squares, leading 0
    k: int
    fallback: float


@dataclass
class DeliveryHistory:
    """Completed shipments indexed for as-of look-ups (see module docstring).

    Attributes:
        records: the ``completed_records`` frame it was built from.
        lane_distance: median distance per warehouse|dest lane (fallback for requests
            that omit ``distance_km``).
        sla: median ``promised_days`` per carrier|service|dest (fallback for requests
            without one).
        weight_median: fallback weight for requests without ``weight_kg``.
    """

    records: pd.DataFrame
    lane_distance: dict[str, float] = field(default_factory=dict)
    sla: dict[str, float] = field(default_factory=dict)
    weight_median: float = 1.0
    distance_median: float = 500.0
    sla_median: float = 5.0
    origin_of: dict[str, str] = field(default_factory=dict)
    fallbacks: dict[str, float] = field(default_factory=dict)
    index: dict[str, _StatIndex] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {}
        for stat, (_keys, _value, k) in STATS.items():
            rec = self.records[self.records["stat"] == stat]
            keys = np.sort(rec["key"].unique())
            codes = {key: i for i, key in enumerate(keys)}
            code = pd.Categorical(rec["key"], categories=keys).codes.astype(np.int64)
            comb = (code << _KEY_SHIFT) | rec["done_s"].to_numpy(np.int64)
            order = np.argsort(comb, kind="stable")
            v = rec["value"].to_numpy(float)[order]
            self.index[stat] = _StatIndex(
                codes=codes,
                combined=comb[order],
                csum=np.concatenate([[0.0], np.cumsum(v)]),
                csq=np.concatenate([[0.0], np.cumsum(v * v)]),
                k=k,
                fallback=float(self.fallbacks.get(stat, np.mean(v) if len(v) else 0.0)),
            )
        # A snapshot keeps the fallbacks of the full history (unknown keys answer alike).
        self.fallbacks = {stat: ix.fallback for stat, ix in self.index.items()}
        self._flat = _FlatIndex.of(self.index)

    @classmethod
    def from_tables(
        cls,
        orders: pd.DataFrame,
        shipments: pd.DataFrame,
        tracking_events: pd.DataFrame | None = None,
    ) -> DeliveryHistory:
        """Index every finished shipment (and hub scan) of the tables, plus fallbacks."""
        records = completed_records(orders, shipments, tracking_events)
        o = orders.merge(shipments[[C.ORDER_ID, C.WEIGHT_KG]], on=C.ORDER_ID, how="left")
        lane = _key_string(o, (C.WAREHOUSE, C.DEST_REGION))
        dist = pd.Series(o[C.DISTANCE_KM].to_numpy(float)).groupby(lane).median().dropna()
        sla_key = _key_string(o, (C.CARRIER, C.SERVICE_LEVEL, C.DEST_REGION))
        sla = pd.Series(o[C.PROMISED_DAYS].to_numpy(float)).groupby(sla_key).median().dropna()
        origin = o.groupby(C.WAREHOUSE)[C.ORIGIN_REGION].agg(lambda s: s.mode().iloc[0])
        return cls(
            records=records,
            lane_distance={str(k): float(v) for k, v in dist.items()},
            sla={str(k): float(v) for k, v in sla.items()},
            weight_median=float(np.nanmedian(o[C.WEIGHT_KG].to_numpy(float)))
            if o[C.WEIGHT_KG].notna().any()
            else 1.0,
            distance_median=float(np.nanmedian(o[C.DISTANCE_KM].to_numpy(float)))
            if o[C.DISTANCE_KM].notna().any()
            else 500.0,
            sla_median=float(np.nanmedian(o[C.PROMISED_DAYS].to_numpy(float)))
            if o[C.PROMISED_DAYS].notna().any()
            else 5.0,
            origin_of={str(k): str(v) for k, v in origin.items()},
        )

    def snapshot(self, as_of: Any | None = None) -> DeliveryHistory:
        """The smallest history that answers requests after ``as_of`` identically.

        Keeps, for each statistic and key, the last ``k`` records finished before
        ``as_of`` (default: all) - exactly what a later request's window can see.
        """
        rec = self.records
        if as_of is not None:
            rec = rec[rec["done_s"] < int(_to_seconds(np.array([pd.Timestamp(as_of)]))[0])]
        rec = rec.sort_values(["stat", "key", "done_s"], kind="stable")
        ref_s = (
            int(_to_seconds(np.array([pd.Timestamp(as_of)]))[0])
            if as_of is not None
            else int(rec["done_s"].max())
            if len(rec)
            else 0
        )
        keep = []
        for stat, (_keys, _value, k) in STATS.items():
            part = rec[rec["stat"] == stat]
            if stat in WEEKLY_STATS and len(part):
                # Only the current order week and the PRIOR_WEEKS before it answer a later request.
                wk = part["key"].str.rsplit("|", n=1).str[-1].astype(np.int64).to_numpy()
                part = part[wk >= int(week_index(np.array([ref_s]))[0]) - PRIOR_WEEKS - 1]
            keep.append(part.groupby("key", sort=False).tail(k))
        return DeliveryHistory(
            records=pd.concat(keep, ignore_index=True),
            lane_distance=dict(self.lane_distance),
            sla=dict(self.sla),
            weight_median=self.weight_median,
            distance_median=self.distance_median,
            sla_median=self.sla_median,
            origin_of=dict(self.origin_of),
            fallbacks=dict(self.fallbacks),
        )

    def to_frame(self) -> tuple[pd.DataFrame, dict]:
        """(records, fallbacks) for writing a snapshot artifact."""
        meta = {
            "lane_distance": self.lane_distance,
            "sla": self.sla,
            "weight_median": self.weight_median,
            "distance_median": self.distance_median,
            "sla_median": self.sla_median,
            "origin_of": self.origin_of,
            "fallbacks": self.fallbacks,
        }
        return self.records.copy(), meta

    @classmethod
    def from_frame(cls, records: pd.DataFrame, meta: dict) -> DeliveryHistory:
        return cls(records=records, **meta)

    def recent(self, stat: str, keys: Any, cutoff_s: np.ndarray):
        """Mean, sd and count of the last ``k`` values of ``stat`` before each cutoff."""
        mean, sd, cnt = self.recent_many([(stat, keys, 0)], np.asarray(cutoff_s, np.int64))
        return mean[0], sd[0], cnt[0]

    def recent_many(
        self, queries: list[tuple[str, Any, int]], cutoff_s: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`recent` of many (stat, keys, weeks back) queries over the same rows.

        A query ``(stat, keys, w)`` looks ``w`` weeks back: its cutoffs are
        ``cutoff_s - w`` weeks. Every query is answered by the same two binary searches
        into one array of all statistics, so a request's few dozen statistics cost one
        numpy pass instead of one per statistic. Returns (mean, sd, count), each with one
        row per query and one column per cutoff.
        """
        n = len(cutoff_s)
        if n > _QUERY_ROWS:  # bounded temporaries: rows in slices, same arithmetic
            parts = [
                self.recent_many(
                    [(s, keys[i : i + _QUERY_ROWS], w) for s, keys, w in queries],
                    cutoff_s[i : i + _QUERY_ROWS],
                )
                for i in range(0, n, _QUERY_ROWS)
            ]
            return tuple(np.concatenate([p[j] for p in parts], axis=1) for j in range(3))
        fl = self._flat
        pos = [fl.position[s] for s, _keys, _w in queries]
        code = np.fromiter(
            (self.index[s].codes.get(k, -1) for s, keys, _w in queries for k in keys),
            np.int64,
            len(queries) * n,
        ).reshape(len(queries), n)
        weeks = np.array([w for _s, _keys, w in queries], np.int64)[:, None]
        cutoff = np.asarray(cutoff_s, np.int64)[None, :] - weeks * (7 * SECONDS_PER_DAY)
        known = code >= 0
        group = (np.where(known, code, 0) + fl.offset[pos][:, None]) << _KEY_SHIFT
        hi = fl.combined.searchsorted(group | cutoff, side="left")
        lo_group = fl.combined.searchsorted(group, side="left")
        cnt = np.where(known, np.minimum(hi - lo_group, fl.k[pos][:, None]), 0)
        # Each statistic's cumulative sums carry a leading 0: one more slot per stat.
        hi_c = hi + fl.stat_no[pos][:, None]
        lo_c = hi_c - cnt
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = (fl.csum[hi_c] - fl.csum[lo_c]) / cnt
            var = (fl.csq[hi_c] - fl.csq[lo_c]) / cnt - mean**2
        mean = np.where(cnt > 0, mean, fl.fallback[pos][:, None])
        sd = np.where(cnt > 1, np.sqrt(np.maximum(var, 0.0)), 0.0)
        return mean, sd, cnt.astype(float)


_QUERY_ROWS = 4096  # rows per slice of recent_many (temporaries of ~50 x rows values)


@dataclass
class _FlatIndex:
    """Every statistic's index in one sorted array: a statistic's key codes are shifted
    past the previous statistics' (``offset``), so one binary search answers any of
    them; ``csum``/``csq`` are the statistics' own cumulative sums end to end (the same
    floats as each statistic's, so the means are the same to the bit)."""

    position: dict[str, int]
    offset: np.ndarray
    stat_no: np.ndarray
    k: np.ndarray
    fallback: np.ndarray
    combined: np.ndarray
    csum: np.ndarray
    csq: np.ndarray

    @classmethod
    def of(cls, index: dict[str, _StatIndex]) -> _FlatIndex:
        stats = list(index)
        sizes = [len(index[s].codes) for s in stats]
        offset = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(
            position={s: i for i, s in enumerate(stats)},
            offset=offset,
            stat_no=np.arange(len(stats), dtype=np.int64),
            k=np.array([index[s].k for s in stats], np.int64),
            fallback=np.array([index[s].fallback for s in stats], float),
            combined=np.concatenate(
                [
                    index[s].combined + (int(o) << _KEY_SHIFT)
                    for s, o in zip(stats, offset, strict=True)
                ]
                + [np.zeros(0, np.int64)]
            ),
            csum=np.concatenate([index[s].csum for s in stats] + [np.zeros(0)]),
            csq=np.concatenate([index[s].csq for s in stats] + [np.zeros(0)]),
        )


# --- calendar ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _calendar(holidays: tuple[tuple[int, int], ...]) -> tuple[int, np.ndarray, np.ndarray]:
    """Per-day lookup tables 1990..2080: days to the next holiday, peak-season flag."""
    start = np.datetime64("1990-01-01")
    days = np.arange(start, np.datetime64("2080-01-01"), dtype="datetime64[D]")
    idx = pd.DatetimeIndex(days)
    md = idx.month.to_numpy() * 100 + idx.day.to_numpy()
    hol = np.isin(md, [m * 100 + d for m, d in holidays])
    nxt = np.full(len(days), 999, dtype=np.int64)
    pos = np.flatnonzero(hol)
    j = np.searchsorted(pos, np.arange(len(days)), side="left")
    ok = j < len(pos)
    nxt[ok] = pos[j[ok]] - np.arange(len(days))[ok]
    peak = ((md >= 1120) & (md <= 1130)) | ((md >= 1201) & (md <= 1223))
    return int(start.astype("datetime64[D]").astype(np.int64)), nxt, peak


# --- the feature function ---------------------------------------------------------------


def _as_columns(requests: pd.DataFrame | Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
    if isinstance(requests, pd.DataFrame):
        return {c: requests[c].to_numpy() for c in requests.columns}, len(requests)
    cols = {}
    n = None
    for k, v in requests.items():
        arr = np.asarray(v) if isinstance(v, (list, tuple, np.ndarray, pd.Series)) else None
        if arr is None:
            arr = np.empty(1, dtype=object)
            arr[0] = v
        cols[k] = arr
        n = len(arr) if n is None else n
    return cols, n or 0


def _missing(arr: np.ndarray) -> np.ndarray:
    return (
        pd.isna(arr)
        if arr.dtype == object
        else np.isnan(arr)
        if arr.dtype.kind == "f"
        else (np.zeros(len(arr), dtype=bool))
    )


def _str_col(cols: dict, name: str, n: int, required: bool) -> np.ndarray:
    if name not in cols:
        if required:
            raise DeliveryInputError(f"{name}: required field is missing from the request")
        return np.full(n, None, dtype=object)
    arr = np.asarray(cols[name], dtype=object)
    miss = pd.isna(arr) | (arr == "")
    if required and miss.any():
        raise DeliveryInputError(
            f"{name}: required field is missing/empty in {int(miss.sum())} request row(s)"
        )
    return arr


def _num_col(cols: dict, name: str, n: int) -> np.ndarray:
    if name not in cols:
        return np.full(n, np.nan)
    arr = cols[name]
    if isinstance(arr, np.ndarray) and arr.dtype.kind in "fiu":
        return arr.astype(float)
    try:
        return np.asarray(arr, dtype=float)
    except (TypeError, ValueError):
        pass
    try:
        return pd.to_numeric(pd.Series(cols[name]), errors="raise").to_numpy(float)
    except (TypeError, ValueError) as err:
        raise DeliveryInputError(f"{name}: must be numeric ({err})") from None


def _time_col(cols: dict, name: str, n: int, required: bool) -> np.ndarray:
    """A timestamp field -> whole seconds since the epoch (UTC), NAT where missing."""
    if name not in cols:
        if required:
            raise DeliveryInputError(f"{name}: required field is missing from the request")
        return np.full(n, NAT, dtype=np.int64)
    raw = cols[name]
    if isinstance(raw, np.ndarray) and raw.dtype == _SECONDS:  # parsed by parse_times
        sec = raw.view(np.int64)  # NaT is INT64_MIN, which is NAT
        miss = sec == NAT
        if ((sec >= _LOW_S) & (sec <= _HIGH_S) | miss).all():  # else: the error below
            if required and miss.any():
                raise DeliveryInputError(
                    f"{name}: required timestamp is missing in {int(miss.sum())} row(s)"
                )
            return sec.copy()
    parsed = utc_times(raw)
    bad = unreadable(raw, parsed)
    if bad.any():
        shown = np.asarray(raw, dtype=object).reshape(-1)[bad][:3].tolist()
        raise DeliveryInputError(f"{name}: not a timestamp: {shown}")
    miss = np.isnat(parsed)
    if required and miss.any():
        raise DeliveryInputError(
            f"{name}: required timestamp is missing in {int(miss.sum())} row(s)"
        )
    return np.where(miss, NAT, parsed.astype("datetime64[s]").astype(np.int64))


_SECONDS = np.dtype("datetime64[s]")
#: what utc_times accepts (datetime64[ns]'s range), in seconds
_LOW_S = int(np.datetime64("1677-09-22", "s").astype(np.int64))
_HIGH_S = int(np.datetime64("2262-04-11", "s").astype(np.int64))


def parse_times(cols: dict, n: int) -> dict:
    """``cols`` with every timestamp column present parsed once to datetime64[s].

    The model reads ``ordered_at`` again after the features: parsing once up front
    halves the timestamp work on the serving path. Missing columns stay missing (the
    feature function reports the required ones); a bad value raises DeliveryInputError.
    """
    out = dict(cols)
    for name in (C.ORDERED_AT, AS_OF, PICKED_UP_AT, LAST_SCAN_AT, "promise_date"):
        if name in cols:
            out[name] = _time_col(cols, name, n, False).view("datetime64[s]")
    return out


#: Weekly statistics with features of their own (each gets a ``<mean>_vs_prior``).
WEEKLY_FEATURES = tuple(s for s in STAT_FEATURES if s in WEEKLY_STATS)
#: Weekly statistics looked up only for their counts (the done shares' denominators).
COUNT_STATS = tuple(s for s in WEEKLY_STATS if s not in STAT_FEATURES)


def _stat_queries(frame: Mapping[str, np.ndarray]) -> list[tuple[str, Any, int]]:
    """The (stat, keys, weeks back) look-ups of :func:`delivery_features`, in this
    order: each statistic of :data:`STAT_FEATURES` now, each of :data:`COUNT_STATS`
    now, then every weekly statistic at the same point of each of the PRIOR_WEEKS
    weeks before (weeks innermost)."""
    keys: dict[tuple[str, ...], Any] = {}  # statistics share key columns: join once

    def now(cols: tuple[str, ...]) -> Any:
        if cols not in keys:
            keys[cols] = _keys(frame, cols)
        return keys[cols]

    queries: list[tuple[str, Any, int]] = [
        (stat, now(STATS[stat][0]), 0) for stat in (*STAT_FEATURES, *COUNT_STATS)
    ]
    week = np.asarray(frame[ORDER_WEEK])
    for stat in WEEKLY_STATS:
        cols = STATS[stat][0]
        assert cols[-1] == ORDER_WEEK  # the week is the key's last part
        prefix = now(cols[:-1])
        for w in range(1, PRIOR_WEEKS + 1):
            if isinstance(prefix, list):  # a serving batch: Python strings throughout
                prior = [f"{p}|{x}" for p, x in zip(prefix, (week - w).tolist(), strict=True)]
            else:
                prior = _keys({"p": prefix, "w": week - w}, ("p", "w"))
            queries.append((stat, prior, w))
    return queries


def delivery_features(
    requests: pd.DataFrame | Mapping[str, Any],
    history: DeliveryHistory,
    holidays: tuple[tuple[int, int], ...] = DEFAULT_HOLIDAYS,
    as_frame: bool = True,
) -> pd.DataFrame | dict[str, np.ndarray]:
    """Features of delivery requests, each computed as of its own decision moment.

    Args:
        requests: one row per request (a frame, or a dict of scalars / equal-length
            arrays). Required: ``warehouse``, ``dest_region``, ``carrier``,
            ``service_level``, ``ordered_at``. Optional: ``origin_region`` (default:
            the warehouse's region), ``distance_km`` (default: the lane's median),
            ``weight_kg`` (default: median; must be >= 0), ``promised_days`` (the
            carrier's SLA; default: lane median). In transit, also ``as_of`` (the
            decision moment; missing = checkout) and what tracking showed by then:
            ``picked_up_at``, ``last_scan_type``, ``last_scan_region``,
            ``last_scan_at``, ``n_scans``.
        history: completed shipments; only those finished before each row's cutoff
            (``as_of`` if given, else ``ordered_at``) are used.
        holidays: (month, day) pairs of the holiday calendar.
        as_frame: False returns the same columns as a dict of arrays (the serving
            fast path skips building a DataFrame).

    Returns:
        A frame with the categorical columns (:data:`CATEGORICAL`,
        ``last_scan_type``) and the numeric ones (:data:`NUMERIC`), index 0..n-1.

    Raises:
        DeliveryInputError: a required field is missing, a timestamp does not parse,
            weight or distance is negative, or ``as_of`` precedes ``ordered_at``.
    """
    cols, n = _as_columns(requests)
    wh = _str_col(cols, C.WAREHOUSE, n, True)
    dest = _str_col(cols, C.DEST_REGION, n, True)
    carrier = _str_col(cols, C.CARRIER, n, True)
    svc = _str_col(cols, C.SERVICE_LEVEL, n, True)
    origin = _str_col(cols, C.ORIGIN_REGION, n, False)
    miss_o = pd.isna(origin)
    if miss_o.any():
        origin = origin.copy()
        origin[miss_o] = [history.origin_of.get(str(w), "unknown") for w in wh[miss_o]]
    t0 = _time_col(cols, C.ORDERED_AT, n, True)
    as_of = _time_col(cols, AS_OF, n, False)
    in_transit = as_of != NAT
    if (in_transit & (as_of < t0)).any():
        raise DeliveryInputError(f"{AS_OF}: must not be earlier than {C.ORDERED_AT}")
    cutoff = np.where(in_transit, as_of, t0)

    dist = _num_col(cols, C.DISTANCE_KM, n)
    if (dist < 0).any():
        raise DeliveryInputError(f"{C.DISTANCE_KM}: must be >= 0, got {dist[dist < 0][:3]}")
    weight = _num_col(cols, C.WEIGHT_KG, n)
    if (weight < 0).any():
        raise DeliveryInputError(f"{C.WEIGHT_KG}: must be >= 0, got {weight[weight < 0][:3]}")
    sla = _num_col(cols, SLA_DAYS, n)
    if (sla < 0).any():
        raise DeliveryInputError(f"{SLA_DAYS}: must be >= 0")

    lane2 = _key_string({"a": wh, "b": dest}, ("a", "b"))
    dist_missing = np.isnan(dist)
    if dist_missing.any():
        fill = np.array([history.lane_distance.get(k, history.distance_median) for k in lane2])
        dist = np.where(dist_missing, fill, dist)
    weight_missing = np.isnan(weight)
    weight = np.where(weight_missing, history.weight_median, weight)
    if np.isnan(sla).any():
        sk = _key_string({"a": carrier, "b": svc, "c": dest}, ("a", "b", "c"))
        fill = np.array([history.sla.get(k, history.sla_median) for k in sk])
        sla = np.where(np.isnan(sla), fill, sla)

    # Calendar of the order moment (transit time is measured from the order).
    day = np.floor_divide(t0, SECONDS_PER_DAY)
    sec_of_day = t0 - day * SECONDS_PER_DAY
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    base, nxt, peak = _calendar(tuple(holidays))
    di = np.clip(day - base, 0, len(nxt) - 1)
    to_hol = np.minimum(nxt[di], 30)

    frame = {
        C.WAREHOUSE: wh,
        C.DEST_REGION: dest,
        C.CARRIER: carrier,
        C.SERVICE_LEVEL: svc,
        ORDER_WEEK: week_index(t0),
    }
    out: dict[str, np.ndarray] = {
        C.WAREHOUSE: wh.astype(str),
        C.ORIGIN_REGION: origin.astype(str),
        C.DEST_REGION: dest.astype(str),
        C.CARRIER: carrier.astype(str),
        C.SERVICE_LEVEL: svc.astype(str),
        "log_distance": np.log1p(dist),
        "distance_missing": dist_missing.astype(float),
        "weight_kg": weight,
        "weight_missing": weight_missing.astype(float),
        "sla_days": sla,
        "weekday": weekday.astype(float),
        "weekend_order": ((weekday == 4) | (weekday == 5)).astype(float),
        "hour": sec_of_day / 3600.0,
        "frac_of_day": sec_of_day / SECONDS_PER_DAY,
        "days_to_holiday": to_hol.astype(float),
        "holiday_soon": (to_hol <= HOLIDAY_HORIZON).astype(float),
        "is_peak": peak[di].astype(float),
    }
    mean, sd, cnt = history.recent_many(_stat_queries(frame), cutoff)
    now = {stat: i for i, stat in enumerate((*STAT_FEATURES, *COUNT_STATS))}
    # The prior weeks' sums and counts of every weekly statistic at once, added week
    # by week (the order of the additions fixes the floats).
    first = len(now)
    shape = (len(WEEKLY_STATS), PRIOR_WEEKS, n)
    pm, pc = mean[first:].reshape(shape), cnt[first:].reshape(shape)
    terms = np.where(pc > 0, pm * pc, 0.0)
    p_sum, p_n = np.zeros((len(WEEKLY_STATS), n)), np.zeros((len(WEEKLY_STATS), n))
    for w in range(PRIOR_WEEKS):
        p_sum += terms[:, w]
        p_n += pc[:, w]
    # This week so far minus the prior weeks (every weekly statistic in one pass), and
    # the done shares against the week's orders.
    i = [now[s] for s in WEEKLY_FEATURES]
    j = [WEEKLY_STATS.index(s) for s in WEEKLY_FEATURES]
    with np.errstate(invalid="ignore", divide="ignore"):
        vs_prior = np.where((cnt[i] > 0) & (p_n[j] > 0), mean[i] - p_sum[j] / p_n[j], 0.0)
        i = [now[s] for s in DONE_SHARES]
        j = [WEEKLY_STATS.index(s) for s in DONE_SHARES]
        o_now = cnt[[now[o] for o in DONE_SHARES.values()]]
        o_prior = p_n[[WEEKLY_STATS.index(o) for o in DONE_SHARES.values()]]
        ok = (o_now > 0) & (o_prior > 0)
        done = np.where(ok, cnt[i] / o_now - p_n[j] / o_prior, 0.0)
    log_cnt = np.log1p(cnt)
    for stat, (mean_name, n_name, sd_name) in STAT_FEATURES.items():
        out[mean_name] = mean[now[stat]]
        if n_name is not None:
            out[n_name] = log_cnt[now[stat]]
        if sd_name is not None:
            out[sd_name] = sd[now[stat]]
        if stat in WEEKLY_FEATURES:
            out[f"{mean_name}_vs_prior"] = vs_prior[WEEKLY_FEATURES.index(stat)]
        if stat in DONE_SHARES:
            out[f"{stat}_done_vs_prior"] = done[list(DONE_SHARES).index(stat)]

    # In transit: what tracking showed by as_of (checkout rows get neutral values).
    pick = _time_col(cols, PICKED_UP_AT, n, False)
    scan_at = _time_col(cols, LAST_SCAN_AT, n, False)
    scan_type = _str_col(cols, LAST_SCAN_TYPE, n, False)
    scan_region = _str_col(cols, LAST_SCAN_REGION, n, False)
    n_scans = _num_col(cols, N_SCANS, n)
    picked = in_transit & (pick != NAT) & (pick <= as_of)
    elapsed = np.where(in_transit, (as_of - t0) / SECONDS_PER_DAY, 0.0)
    day_idx = np.where(in_transit, np.floor_divide(as_of, SECONDS_PER_DAY) - day, 0)
    has_scan = in_transit & ~pd.isna(scan_type)
    out.update(
        {
            "in_transit": in_transit.astype(float),
            "elapsed_days": elapsed,
            "elapsed_day_index": day_idx.astype(float),
            "since_pickup_days": np.where(picked, (as_of - pick) / SECONDS_PER_DAY, 0.0),
            "picked_up": picked.astype(float),
            "last_scan_at_dest": (has_scan & (scan_region.astype(str) == dest.astype(str))).astype(
                float
            ),
            "hours_since_scan": np.where(
                has_scan & (scan_at != NAT), (as_of - scan_at) / 3600.0, 0.0
            ),
            "n_scans": np.where(in_transit, np.nan_to_num(n_scans, nan=0.0), 0.0),
            LAST_SCAN_TYPE: np.where(has_scan, scan_type.astype(str), NO_SCAN),
        }
    )
    return pd.DataFrame(out) if as_frame else out


def tracking_facts(snapshots: pd.DataFrame, tracking_events: pd.DataFrame) -> pd.DataFrame:
    """What tracking showed for each (shipment_id, as_of) - events strictly before as_of.

    Returns ``picked_up_at``, ``last_scan_type``, ``last_scan_region``, ``last_scan_at``
    and ``n_scans`` aligned with ``snapshots`` (same index), ready to be merged into
    requests for :func:`delivery_features`.
    """
    ev = tracking_events[[C.SHIPMENT_ID, C.EVENT_AT, C.EVENT_TYPE, C.LOCATION_REGION]]
    ev = ev.sort_values([C.SHIPMENT_ID, C.EVENT_AT], kind="stable").reset_index(drop=True)
    sid = ev[C.SHIPMENT_ID].to_numpy(np.int64)
    et = _to_seconds(ev[C.EVENT_AT].to_numpy())
    # Same trick as the history index: one sorted key, one binary search per snapshot.
    t_rel = et - et.min() if len(et) else et
    base = int(et.min()) if len(et) else 0
    comb = (sid << _KEY_SHIFT) | t_rel
    q_sid = snapshots[C.SHIPMENT_ID].to_numpy(np.int64)
    q_t = _to_seconds(snapshots[AS_OF].to_numpy()) - base
    hi = np.searchsorted(comb, (q_sid << _KEY_SHIFT) | np.maximum(q_t, 0), side="left")
    lo = np.searchsorted(comb, q_sid << _KEY_SHIFT, side="left")
    cnt = hi - lo
    last = np.maximum(hi - 1, 0)
    has = cnt > 0
    types = ev[C.EVENT_TYPE].to_numpy().astype(object)
    regions = ev[C.LOCATION_REGION].to_numpy().astype(object)
    ev_ts = ev[C.EVENT_AT].to_numpy()
    # Pick-up time: the first picked_up event of the shipment, if before as_of.
    pk = ev[ev[C.EVENT_TYPE] == "picked_up"].drop_duplicates(C.SHIPMENT_ID)
    pk_at = pd.Series(pk[C.EVENT_AT].to_numpy(), index=pk[C.SHIPMENT_ID].to_numpy())
    picked = pk_at.reindex(q_sid).to_numpy()
    as_of = snapshots[AS_OF].to_numpy()
    picked = np.where(~pd.isna(picked) & (picked < as_of), picked, np.datetime64("NaT"))
    return pd.DataFrame(
        {
            PICKED_UP_AT: picked.astype("datetime64[ns]"),
            LAST_SCAN_TYPE: pd.array(np.where(has, types[last], None), dtype=object),
            LAST_SCAN_REGION: pd.array(np.where(has, regions[last], None), dtype=object),
            LAST_SCAN_AT: np.where(has, ev_ts[last], np.datetime64("NaT")).astype("datetime64[ns]"),
            N_SCANS: cnt.astype(float),
        },
        index=snapshots.index,
    )
