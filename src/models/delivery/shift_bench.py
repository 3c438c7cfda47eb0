"""Calibration through a disruption: ``ppx bench delivery --world W --shift``.

On a world generated with a disruption (``ppx data world --disrupt-carrier ...`` or
``--disrupt-region ...``), the model is trained and calibrated on the months before the
test months, exactly as in the main benchmark, and then **not retrained**. The test
months are replayed day by day: each morning the online recalibration
(:class:`OnlineRecalibration`) updates each carrier's speed factor and delay from the
orders of its window as known then, and every order of the day is promised with the
validation rule on the time-scaled distribution (``online``); ``online_region`` does
the same with factors per destination region as well; ``frozen`` is the validation
rule alone. The figure is the realised on-time rate of the 90 % promise per purchase
week, for the disrupted parcels (the carrier's, the region's, or both) and for all
parcels, before, during and after the disruption - and the worst week once the first
(or first two) week(s) after each start and end of the disruption are left out.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.models.delivery import train as tr
from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.model import fit
from ppx.models.delivery.recalibrate import OnlineRecalibration

TARGET = 0.9
BAND = (0.88, 0.92)


def _disruption(world_path) -> dict:
    """The world's ``disruption_*`` parameters from its manifest (empty for a store)."""
    path = Path(world_path) / "manifest.json"
    if not path.exists():
        return {}
    params = json.loads(path.read_text()).get("params", {})
    return {k: v for k, v in params.items() if k.startswith("disruption_")}


def replay(model, rows: pd.DataFrame, warm: pd.DataFrame, online: OnlineRecalibration, target):
    """Promises of ``rows`` (checkout rows, purchase order) made day by day with the
    online rule re-fitted each morning; ``warm`` orders (the days before) only feed it.

    Returns (frozen promise, online promise) per row of ``rows``.
    """
    allr = pd.concat([warm, rows], ignore_index=True)
    cdf = model.cdf(fd.delivery_features(allr, model.history))
    frozen = model.promise(cdf[len(warm) :], target, np.zeros(len(rows), dtype=bool))
    live = replay_cdf(allr, cdf, len(warm), frozen, model.checkout_promise, online, target)
    return frozen, live


def replay_cdf(allr: pd.DataFrame, cdf, n_warm: int, frozen, validation_rule, online, target):
    """:func:`replay` on precomputed CDFs: ``allr`` is the warm-up orders then the scored
    ones (purchase order), ``frozen`` the validation rule's promises of the scored ones.
    Each order carries its carrier and destination region to the online rule."""
    ids = allr[C.SHIPMENT_ID].to_numpy()
    # Every delivery is registered up front; refit(now) only ever uses those before
    # the day of ``now`` (what a live service would have seen by then).
    done = allr[C.DELIVERED_AT].notna().to_numpy()
    online.deliver(ids[done], allr.loc[done, C.DELIVERED_AT].to_numpy())
    carriers = allr[C.CARRIER].to_numpy(dtype=object)
    regions = allr[C.DEST_REGION].to_numpy(dtype=object)
    ordered = allr[C.ORDERED_AT]
    w = slice(0, n_warm)
    online.observe(ids[w], ordered.iloc[w], carriers[w], cdf[w], regions=regions[w])
    live = np.asarray(frozen).copy()
    day = ordered.iloc[n_warm:].dt.normalize().to_numpy()
    for d in np.unique(day):
        m = np.flatnonzero(day == d)
        j = n_warm + m
        online.refit(d)
        live[m] = online.promise(
            cdf[j], target, carriers[j], frozen[m], validation_rule, regions[j]
        )
        online.observe(ids[j], ordered.iloc[j], carriers[j], cdf[j], live[m], target, regions[j])
    return live


def weekly(rows: pd.DataFrame, y, promises: dict, focus: np.ndarray) -> pd.DataFrame:
    """On-time rate per purchase week (from Monday), for all parcels and for the
    ``focus`` ones (the disrupted carrier's, every week)."""
    week = rows[C.ORDERED_AT].dt.to_period("W-SUN").dt.start_time.to_numpy()
    out = []
    for w in np.unique(week):
        m = week == w
        row = {
            "week": str(pd.Timestamp(w).date()),
            "orders": int(m.sum()),
            "focus": int(focus[m].sum()),
        }
        for name, p in promises.items():
            row[f"{name}_all"] = float(np.mean(y[m] <= p[m]))
            if focus[m].any():
                row[f"{name}_focus"] = float(np.mean(y[m & focus] <= p[m & focus]))
        out.append(row)
    return pd.DataFrame(out)


def _full_weeks(wk: pd.DataFrame, rows: pd.DataFrame) -> np.ndarray:
    """Weeks whose seven purchase days all lie in the test months."""
    last = rows[C.ORDERED_AT].max().normalize()
    return (pd.to_datetime(wk["week"]) + pd.Timedelta(days=6) <= last).to_numpy()


def _after_shifts(wk: pd.DataFrame, dis: dict, grace_weeks: int) -> np.ndarray:
    """Weeks not within ``grace_weeks`` weeks from the start or the end of the
    disruption (purchase weeks from Monday; all weeks without a disruption)."""
    weeks = pd.to_datetime(wk["week"])
    keep = np.ones(len(wk), dtype=bool)
    if not (dis.get("disruption_start") and dis.get("disruption_days")):
        return keep
    start = pd.Timestamp(dis["disruption_start"])
    for shift in (start, start + pd.Timedelta(days=dis["disruption_days"])):
        first = shift - pd.Timedelta(days=shift.dayofweek)  # its purchase week
        keep &= ~((weeks >= first) & (weeks < first + pd.Timedelta(weeks=grace_weeks))).to_numpy()
    return keep


def _worst(rates: pd.Series) -> float | None:
    """The rate farthest from the target (None without weeks)."""
    r = np.asarray(rates, float)
    return float(r[np.argmax(np.abs(r - TARGET))]) if len(r) else None


def shift_benchmark(
    world_path,
    online: OnlineRecalibration | None = None,
    target: float = TARGET,
    progress: bool = True,
    details=None,
) -> dict[str, dict]:
    """{METHOD: {METRIC: value}} for ``frozen`` and ``online`` (default settings unless
    given) on a disrupted world."""
    online = online or OnlineRecalibration()
    # The same rule reading destination regions as well (a region's flood), compared.
    regional = OnlineRecalibration(**{**online.settings(), "by_region": True})
    cfg = DeliveryConfig()
    _tables, _truth, data = tr.load_data(world_path, cfg, validate=False)
    model = fit(data.train, data.val, data.history, cfg, progress)
    rows = tr.checkout_rows(data.test, delivered=False).sort_values(C.ORDERED_AT, kind="stable")
    rows = rows.reset_index(drop=True)
    val = tr.checkout_rows(data.val, delivered=False)
    t0 = rows[C.ORDERED_AT].min().normalize()
    warm = val[val[C.ORDERED_AT] >= t0 - pd.Timedelta(days=online.window_days)]
    # Outcomes as the benchmark knows them: the final delivery day (the val/test frames
    # carry it in ``delivered_at``); lost parcels are not scored.
    warm = warm.sort_values(C.ORDERED_AT, kind="stable").reset_index(drop=True)
    allr = pd.concat([warm, rows], ignore_index=True)
    cdf = model.cdf(fd.delivery_features(allr, model.history))
    frozen = model.promise(cdf[len(warm) :], target, np.zeros(len(rows), dtype=bool))
    live = replay_cdf(allr, cdf, len(warm), frozen, model.checkout_promise, online, target)
    by_reg = replay_cdf(allr, cdf, len(warm), frozen, model.checkout_promise, regional, target)
    delivered = rows[C.DELIVERED_AT].notna().to_numpy()
    y = np.full(len(rows), np.inf)
    y[delivered] = (
        rows.loc[delivered, C.DELIVERED_AT].dt.normalize()
        - rows.loc[delivered, C.ORDERED_AT].dt.normalize()
    ).dt.days.to_numpy()
    lost = rows[C.STATUS].eq("lost").to_numpy() if C.STATUS in rows else np.zeros(len(rows), bool)
    keep = delivered & ~lost
    rows, y = rows[keep].reset_index(drop=True), y[keep]
    frozen, live, by_reg = frozen[keep], live[keep], by_reg[keep]
    dis = _disruption(world_path)
    hit = np.zeros(len(rows), dtype=bool)
    if dis.get("disruption_start") and dis.get("disruption_days"):
        s = pd.Timestamp(dis["disruption_start"])
        hit = (
            (rows[C.ORDERED_AT] >= s)
            & (rows[C.ORDERED_AT] < s + pd.Timedelta(days=dis["disruption_days"]))
        ).to_numpy()
        if dis.get("disruption_carrier"):
            hit = hit & rows[C.CARRIER].eq(dis["disruption_carrier"]).to_numpy()
        if dis.get("disruption_region"):
            hit = hit & rows[C.DEST_REGION].eq(dis["disruption_region"]).to_numpy()
    # The disrupted parcels' group, every week: the carrier's, the region's, or both.
    group = np.ones(len(rows), dtype=bool)
    if dis.get("disruption_carrier"):
        group &= rows[C.CARRIER].eq(dis["disruption_carrier"]).to_numpy()
    if dis.get("disruption_region"):
        group &= rows[C.DEST_REGION].eq(dis["disruption_region"]).to_numpy()
    methods = {"frozen": frozen, "online": live, "online_region": by_reg}
    wk = weekly(rows, y, methods, group)
    full = _full_weeks(wk, rows)
    out: dict[str, dict] = {}
    for name, p in methods.items():
        col = f"{name}_focus"
        g = wk[col] if col in wk else wk[f"{name}_all"]
        inside = (g >= BAND[0]) & (g <= BAND[1])
        out[name] = {
            "coverage_0_9": float(np.mean(y <= p)),
            "coverage_0_9_disrupted": float(np.mean(y[hit] <= p[hit])) if hit.any() else None,
            "promise_days_90": float(np.mean(p)),
            "worst_week_coverage": _worst(g[full]),
            "weeks_in_band": float(inside[full].mean()),
        }
        # Each start and end of the disruption is a shift; the target asks the rate back
        # in the band within two weeks of it: the worst week once one (two) week(s)
        # after each shift are left out, over the group's and over all parcels.
        for grace in (1, 2):
            judged = full & _after_shifts(wk, dis, grace)
            both = pd.concat([g[judged], wk.loc[judged, f"{name}_all"]])
            out[name][f"worst_week_after_{grace}w"] = _worst(both)
            out[name][f"weeks_out_after_{grace}w"] = int(
                ((g[judged] < BAND[0]) | (g[judged] > BAND[1])).sum()
            )
    if details is not None:
        details.update(weeks=wk, disruption=dis)
    return out
