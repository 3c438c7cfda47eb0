"""Olist walk-forward pieces: the network as a live system would have run it, and the
online promise rules built on it (used by :mod:`ppx.models.delivery.olist_bench`).

Every order may use only what was known at its purchase time:

* the hazard network is refitted every ``refit_days`` on orders purchased before the
  refit moment, labelled as known then - parcels still in flight are right-censored,
  not dropped (dropping them would keep only the fast ones and bias every estimate);
  see :func:`walk_forward_cdf`;
* features (recent delivery speed) use deliveries completed before the purchase time;
* :func:`adaptive_promises`: adaptive conformal offsets (Gibbs & Candes 2021) updated
  as earlier promises resolve; :func:`rolling_promises`: the conformal rule re-fitted
  daily on a window of recent orders (Kaplan-Meier, in flight censored);
  :func:`scaled_km_promises` (``ppx_km_scale``): Olist's own estimate rescaled by a
  censoring-aware location-scale rule (location from the last 14 days, tail factor
  from the last 180 days).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.adapters import olist as ol
from ppx.features import delivery as fd
from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.dataset import day_offset
from ppx.models.delivery.model import fit

OLIST_CONFIG = DeliveryConfig(
    d_max=60,
    emb_dim=3,
    hidden=(32, 16),
    epochs=25,
    patience=4,
    batch_size=256,
    lr=5e-3,
    transit_rows=0,
    strict_fields=("carrier", "service_level"),
    target=0.97,
    threads=1,
)


KM_TARGET = 0.955  # scaled_km_promises' target (chosen before the test months, see docs)


def olist_frames(folder) -> tuple[pd.DataFrame, dict, pd.DataFrame]:
    """(labelled base frame, canonical tables, raw adapter frame)."""
    raw = ol.load_olist(folder)
    tables = ol.to_canonical(raw)
    base = tables[C.ORDERS].merge(
        tables[C.SHIPMENTS][[C.ORDER_ID, C.WEIGHT_KG, C.SHIPPED_AT, C.DELIVERED_AT, C.STATUS]],
        on=C.ORDER_ID,
    )
    # Orders that never ship (canceled, unavailable) are not delivery questions.
    base = base[~base[C.STATUS].isin(["canceled", "unavailable"])].reset_index(drop=True)
    return base, tables, raw


def label_at(base: pd.DataFrame, mask: np.ndarray, cutoff, d_max: int) -> pd.DataFrame:
    """Rows of ``base[mask]`` labelled with what was known at ``cutoff`` (censoring)."""
    df = base[mask].reset_index(drop=True).copy()
    cut = np.asarray(cutoff, dtype="datetime64[ns]")
    if cut.ndim == 0:
        cut = np.full(len(df), cut)
    deliv = df[C.DELIVERED_AT].to_numpy()
    done = ~pd.isna(deliv) & (deliv < cut)
    y = np.where(
        done,
        day_offset(df[C.ORDERED_AT].to_numpy(), np.where(done, deliv, cut)),
        day_offset(df[C.ORDERED_AT].to_numpy(), cut),
    )
    df["y_day"] = np.clip(y, 0, d_max)
    df["event"] = done.astype(float)
    df["start_day"] = 0
    df["stage"] = "checkout"
    df[fd.AS_OF] = pd.NaT
    return df


def test_period(base: pd.DataFrame, months: int = 3) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The last ``months`` purchase months that still have delivered orders (>= 100)."""
    m = base[C.ORDERED_AT].dt.to_period("M")
    counts = base[base[C.DELIVERED_AT].notna()].groupby(m).size()
    last = counts[counts >= 100].index.max()
    end = (last + 1).to_timestamp()
    return (last - (months - 1)).to_timestamp(), end


def _fit_at(base, history, refit_at, cfg, val_days: int):
    t = base[C.ORDERED_AT].to_numpy()
    r = np.datetime64(refit_at, "ns")
    v0 = r - np.timedelta64(val_days, "D")
    train = label_at(base, t < v0, r, cfg.d_max)
    val = label_at(base, (t >= v0) & (t < r), r, cfg.d_max)
    return fit(train, val, history, cfg, progress=False)


def walk_forward_cdf(
    base: pd.DataFrame,
    history: fd.DeliveryHistory,
    live: pd.DataFrame,
    start,
    end,
    cfg: DeliveryConfig,
    refit_days: int = 14,
    val_days: int = 42,
    progress: bool = True,
) -> tuple[np.ndarray, list]:
    """CDF of every ``live`` order from the network refitted every ``refit_days``
    between ``start`` and ``end`` on the orders purchased before each refit (labelled
    as known then); each order gets the latest refit before its purchase.

    Returns (cdf, [(refit time, model), ...]).
    """
    from tqdm.auto import tqdm

    live_t = live[C.ORDERED_AT].to_numpy()
    refits = pd.date_range(start, end, freq=f"{refit_days}D")
    cdf = np.zeros((len(live), cfg.d_max + 1))
    models = []
    for i, r in enumerate(tqdm(refits, desc="olist: walk-forward refits", disable=not progress)):
        model = _fit_at(base, history, r, cfg, val_days)
        models.append((r, model))
        nxt = refits[i + 1] if i + 1 < len(refits) else end
        sel = (live_t >= np.datetime64(r)) & (live_t < np.datetime64(nxt))
        if sel.any():
            cdf[sel] = model.cdf(fd.delivery_features(live[sel], history))
    return cdf, models


def adaptive_promises(
    cdf: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    target: float,
    tau0: float,
    gamma: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Adaptive conformal promises (Gibbs & Candes 2021) with delayed feedback.

    Orders are processed in purchase order. Order ``i`` is promised its predicted
    ``target``-quantile day (first day whose calibrated CDF reaches ``target``) plus an
    adaptive offset ``delta`` (days, may be negative), starting at ``tau0``. Adapting an
    offset in days rather than a probability threshold keeps promises stable when the
    predicted tail is thin. Each earlier promise resolves
    as soon as its outcome is *known*: on delivery (kept) or when its promise day ends
    without one (missed) - so parcels in flight count the moment they are late, not
    when (or if) they finally arrive. Each resolution moves ``delta`` by
    ``gamma * (missed - (1 - target))`` days: too many misses lengthen promises, too
    few shorten them, and the realised on-time rate tracks ``target`` as speed drifts.

    Returns (promise days, the offset used per order).
    """
    import heapq

    day_ns = np.int64(86_400 * 10**9)
    t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    dl = np.where(np.isnat(dl), np.iinfo(np.int64).max, dl.astype(np.int64))
    order = np.argsort(t, kind="stable")
    promise = np.zeros(len(t), dtype=int)
    taus = np.zeros(len(t))
    tau = float(tau0)
    base = cdf >= target - 1e-12
    base[:, -1] = True
    base = base.argmax(axis=1)
    d_max = cdf.shape[1] - 1
    pending: list[tuple[int, int]] = []  # (resolution time, missed)
    for i in order:
        while pending and pending[0][0] <= t[i]:
            _, missed = heapq.heappop(pending)
            tau = float(np.clip(tau + gamma * (missed - (1.0 - target)), -d_max, d_max))
        taus[i] = tau
        d = int(np.clip(base[i] + np.ceil(tau - 1e-9), 0, d_max))
        promise[i] = d
        deadline = (t[i] // day_ns + d + 1) * day_ns  # end of the promised day
        if dl[i] < deadline:
            heapq.heappush(pending, (int(dl[i]), 0))
        else:
            heapq.heappush(pending, (int(deadline), 1))
    return promise, taus


def rolling_promises(
    cdf: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    target: float,
    window_days: int = 60,
    min_resolved: int = 100,
) -> np.ndarray:
    """Promises recalibrated every day on the orders of the previous ``window_days``.

    For each purchase day, the conformal promise rule (:class:`Recalibrator`: "promise
    the first day whose CDF reaches p" is kept ``G(p)`` of the time) is re-fitted on
    the orders purchased in the window before that day, each scored under the CDF it
    was given at its own purchase: a parcel delivered before the day gives its score
    ``F(D - 1)``; a parcel still in flight only gives ``score >= F(c - 1)`` (it
    arrives on day ``c`` or later), a right-censored score that the Kaplan-Meier fit
    counts as such. Nothing finished after the purchase day is used. With fewer than
    ``min_resolved`` delivered parcels in the window, or where the fitted rule never
    reaches ``target`` (tail not observed yet), the promise is the CDF's own
    ``target``-quantile.
    """
    from ppx.models.delivery.model import Recalibrator, conformal_scores

    day_ns = np.int64(86_400 * 10**9)
    t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    dl = np.where(np.isnat(dl), np.iinfo(np.int64).max, dl.astype(np.int64))
    day = t // day_ns
    d_max = cdf.shape[1] - 1
    y_final = np.clip(np.where(dl < np.iinfo(np.int64).max, dl // day_ns - day, d_max), 0, d_max)
    own = cdf >= target - 1e-12
    own[:, -1] = True
    promise = own.argmax(axis=1)
    for dd in np.unique(day):
        now = dd * day_ns  # start of the purchase day: what is known then
        todo = day == dd
        win = (t >= now - window_days * day_ns) & (t < now)
        if not win.any():
            continue
        done = win & (dl < now)
        if done.sum() < min_resolved:
            continue
        idx = np.flatnonzero(win)
        ev = (dl[idx] < now).astype(float)
        # In flight: known to arrive on day (now's offset) or later.
        y = np.where(ev > 0, y_final[idx], np.clip(dd - day[idx], 0, d_max))
        scores = conformal_scores(cdf[idx], y, np.zeros(len(idx), int))
        rule = Recalibrator.fit(scores, ev)
        if rule.values[-1] < target:
            continue
        rate = rule(cdf[todo])
        rate[:, -1] = 1.0
        reach = rate >= target - 1e-12
        promise[todo] = reach.argmax(axis=1)
    return promise


def km_quantile(values: np.ndarray, event: np.ndarray, q: float) -> float | None:
    """Smallest ``v`` with Kaplan-Meier ``P(V <= v) >= q``; None if the curve never gets
    there (the tail is not observed yet).

    ``event[i] = 1``: ``V_i = values[i]`` was observed; ``0``: right-censored, only
    ``V_i > values[i]`` is known. At ties events come before censorings (a censored
    value is known to lie above it).
    """
    v = np.asarray(values, float)
    e = np.asarray(event, float)
    if len(v) == 0:
        return None
    order = np.lexsort((-e, v))
    v, e = v[order], e[order]
    at_risk = len(v) - np.arange(len(v))
    surv = np.cumprod(np.where(e > 0, 1.0 - 1.0 / at_risk, 1.0))
    hit = np.flatnonzero(1.0 - surv >= q - 1e-12)
    return float(v[hit[0]]) if len(hit) else None


def scaled_km_promises(
    base_days: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    targets,
    short_days: int = 14,
    long_days: int = 180,
    loc_q: float = 0.5,
    d_max: int = 60,
    min_done: int = 30,
) -> tuple[dict, np.ndarray]:
    """Promises ``floor(base * loc * k)`` re-estimated every purchase day from what is
    known at the start of that day (a location-scale conformal rule, censoring-aware).

    * ``base`` is known at purchase (on Olist: Olist's own estimate in days);
    * ``loc`` follows the drift fast: the Kaplan-Meier median of ``days / base`` over the
      orders purchased in the previous ``short_days`` - parcels still in flight are
      right-censored at the days they have already taken, not dropped (dropping them
      would keep only the fast ones). The body of the distribution resolves within a
      week or two, its 97 % tail only after a month or more, so the location is
      estimated from recent orders and the tail as a multiple of it;
    * ``k`` is that multiple: the Kaplan-Meier ``target``-quantile of the normalised
      score ``days / (base * loc)`` over the previous ``long_days``, each order scored
      with the ``loc`` it was given at its own purchase (in flight: censored).

    Nothing delivered at or after the start of the purchase day is used. Until a
    location is identified the last one is kept (1.0 before the first); where the
    quantile is not identified yet the promise is ``d_max``; so is an order without a
    finite ``base`` (such orders are also left out of every estimate).
    Returns ({target: promise days}, loc per order).
    """
    day_ns = np.int64(86_400 * 10**9)
    t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    dl = np.where(np.isnat(dl), np.iinfo(np.int64).max, dl.astype(np.int64))
    day = t // day_ns
    y = np.clip(np.where(dl < np.iinfo(np.int64).max, dl // day_ns - day, d_max), 0, d_max)
    b = np.asarray(base_days, float)
    has_base = np.isfinite(b)
    b = np.where(has_base, np.maximum(b, 1.0), np.nan)
    days = np.unique(day)

    def known(dd, window):
        """Orders of the window before day dd: (index, days or censoring value, event)."""
        now = dd * day_ns
        idx = np.flatnonzero((t >= now - window * day_ns) & (t < now) & has_base)
        ev = (dl[idx] < now).astype(float)
        # In flight at the start of day dd: arrives on day offset dd - day or later,
        # i.e. its days are > dd - day - 1 (censored there; +0.5 keeps it after ties).
        yy = np.where(ev > 0, y[idx], np.clip(dd - day[idx] - 1, 0, d_max) + 0.5)
        return idx, yy, ev

    loc = np.full(len(t), np.nan)
    last = 1.0
    for dd in days:
        idx, yy, ev = known(dd, short_days)
        if ev.sum() >= min_done:
            r = km_quantile(yy / b[idx], ev, loc_q)
            last = last if r is None else r
        loc[day == dd] = last
    scale = b * loc
    out = {q: np.full(len(t), d_max) for q in targets}
    for dd in days:
        idx, yy, ev = known(dd, long_days)
        if ev.sum() < min_done:
            continue
        todo = (day == dd) & has_base
        for q in targets:
            k = km_quantile(yy / scale[idx], ev, q)
            if k is not None:
                out[q][todo] = np.clip(np.floor(scale[todo] * k + 1e-9), 0, d_max)
    return out, loc
