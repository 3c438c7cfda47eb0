"""What the delivery model's inputs mean, for reports and reason codes (see ppx.explain.dictionary).

The network sees categorical codes and standardised numbers, many of them logs: transit
times as ``log(days)``, this week's times as ``log(time / promised time)``, counts of
evidence as ``log(1 + n)``. Here each is mapped back onto the fact a person knows —
"carrier: SwiftPost", "distance from the warehouse: 820 km", "transit time to this region
(recent average): 3.2 days" — and the evidence counts, spreads and "missing" flags are
folded onto the statistic they qualify, so each finding is told once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ppx.explain.dictionary import Column, Field, build
from ppx.features import delivery as fd

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

_CATEGORIES = (
    Field("warehouse", "warehouse", kind="category"),
    Field("origin_region", "region shipped from", kind="category"),
    Field("dest_region", "destination region", kind="category"),
    Field("carrier", "carrier", kind="category"),
    Field("service_level", "service level", kind="category"),
    Field("last_scan_type", "last tracking scan", kind="category"),
    Field("weekday", "day of the order", kind="category"),
)
#: what "this week" statistics are about, by key prefix
_WHERE = {
    "wh": "at this warehouse",
    "dest": "to this region",
    "lane": "on this route",
}
_WHAT = {"h": "pick-up time", "d": "transit time", "hub": "time to the first hub scan"}


def _weekly(stat: str) -> tuple[str, str]:
    key, _, what = stat.split("_", 2)  # dest_wk_h -> ("dest", "h")
    return _WHAT[what], _WHERE[key]


_DONE = {"h": "already picked up", "hub": "already scanned at a hub"}
_WEEKLY = ("dest_wk_h", "wh_wk_h", "dest_wk_d", "lane_wk_h", "dest_wk_hub", "wh_wk_hub")

FIELDS = [
    *_CATEGORIES,
    Field("distance", "distance from the warehouse", unit="km", decimals=0),
    Field("weight", "parcel weight", unit="kg", decimals=1),
    Field("sla_days", "promised delivery time", unit="days", decimals=0),
    Field("hour", "hour of the order (0-24)", decimals=0),
    Field("days_to_holiday", "days to the next public holiday", unit="days", decimals=0),
    Field("is_peak", "peak season (20 Nov - 23 Dec)", kind="flag"),
    Field("wh", "warehouse handling time (recent average)", unit="days", decimals=1),
    Field("lane", "transit time on this route (recent average)", unit="days", decimals=1),
    Field("dest", "transit time to this region (recent average)", unit="days", decimals=1),
    Field(
        "carrier_days",
        "transit time of this carrier and service (recent average)",
        unit="days",
        decimals=1,
    ),
    *(
        Field(s, f"this week's {w} {k}, as a multiple of the promise", kind="ratio")
        for s, (w, k) in ((s, _weekly(s)) for s in _WEEKLY)
    ),
    Field("dest_h", "pick-up time to this region, as a multiple of the promise", kind="ratio"),
    Field("wh_h", "pick-up time at this warehouse, as a multiple of the promise", kind="ratio"),
    *(
        Field(
            f"{s}_vs_prior", f"this week's {w} {k}, compared with the 4 weeks before", kind="ratio"
        )
        for s, (w, k) in ((s, _weekly(s)) for s in _WEEKLY)
        if f"{fd.STAT_FEATURES[s][0]}_vs_prior" in fd.NUMERIC
    ),
    *(
        Field(
            f"{s}_done",
            f"share of this week's orders {k} {_DONE[s.rsplit('_', 1)[1]]}, "
            "minus the same share in earlier weeks",
            kind="share",
        )
        for s, (_w, k) in ((s, _weekly(s)) for s in fd.DONE_SHARES)
    ),
    Field("in_transit", "parcel already on its way (a re-estimate)", kind="flag"),
    Field("elapsed_days", "time since the order", unit="days", decimals=1),
    Field("since_pickup_days", "time since pick-up", unit="days", decimals=1),
    Field("last_scan_at_dest", "last scan in the destination region", kind="flag"),
    Field("hours_since_scan", "time since the last scan", unit="hours", decimals=0),
    Field("n_scans", "tracking scans so far", kind="count"),
]

_STAT_FIELD = {"wh": "wh", "lane": "lane", "dest": "dest", "carrier": "carrier_days"}


def _columns() -> list[Column]:
    cols = [Column(f"{c.name}_code", c.name, "code") for c in _CATEGORIES]
    cols[-1] = Column("weekday_cat_code", "weekday", "code")
    cols += [
        Column("log_distance", "distance", "log1p"),
        Column("distance_missing", "distance", "missing"),
        Column("weight_kg", "weight"),
        Column("weight_missing", "weight", "missing"),
        Column("sla_days", "sla_days"),
        Column("weekday", "weekday", "identity"),
        Column("weekend_order", "weekday"),
        Column("hour", "hour"),
        Column("frac_of_day", "hour"),
        Column("days_to_holiday", "days_to_holiday"),
        Column("holiday_soon", "days_to_holiday"),
        Column("is_peak", "is_peak"),
    ]
    for stat, (mean, n, sd) in fd.STAT_FEATURES.items():
        target = _STAT_FIELD.get(stat, stat)
        if stat in _STAT_FIELD:
            cols.append(Column(mean, target, "log" if "_log_" in mean else "identity"))
        else:
            cols.append(Column(mean, target, "ratio"))
        cols += [Column(c, target) for c in (n, sd) if c is not None]
        if f"{mean}_vs_prior" in fd.NUMERIC:
            cols.append(Column(f"{mean}_vs_prior", f"{stat}_vs_prior", "ratio"))
    cols += [Column(f"{s}_done_vs_prior", f"{s}_done") for s in fd.DONE_SHARES]
    cols += [
        Column("in_transit", "in_transit"),
        Column("elapsed_days", "elapsed_days"),
        Column("elapsed_day_index", "elapsed_days"),
        Column("since_pickup_days", "since_pickup_days"),
        Column("picked_up", "since_pickup_days"),
        Column("last_scan_at_dest", "last_scan_at_dest"),
        Column("hours_since_scan", "hours_since_scan"),
        Column("n_scans", "n_scans"),
    ]
    return cols


def unscale(model: Any, A: np.ndarray, names: list[str]) -> np.ndarray:
    """Undo the model's standardisation of the numeric inputs (codes stay as they are)."""
    if getattr(model, "num_mean", None) is None:
        return A
    pos = {c: i for i, c in enumerate(fd.NUMERIC)}
    cols = [j for j, c in enumerate(names) if c in pos]
    idx = [pos[names[j]] for j in cols]
    out = np.array(A, dtype=np.float64, copy=True)
    mean = np.asarray(model.num_mean, dtype=np.float64)[idx]
    std = np.asarray(model.num_std, dtype=np.float64)[idx]
    out[:, cols] = out[:, cols] * std + mean
    return out


def decode(model: Any, field: str) -> list[str]:
    """Names of the integer codes (the model's vocabulary; weekdays by name)."""
    vocab = getattr(model, "vocab", None) or {}
    if field == "weekday":
        names = vocab.get("weekday_cat", [])
        return [
            WEEKDAYS[int(v)] if str(v).isdigit() and int(v) < 7 else "an unseen day" for v in names
        ]
    return [
        v if not v.startswith("<") else "an unseen value" for v in map(str, vocab.get(field, []))
    ]


FEATURES = build(FIELDS, _columns(), unscale=unscale, decode=decode, segments={"carrier": ()})
