"""Subscriptions: starts, renewals, skips and pauses, price changes and the churn hazard.

The monthly churn hazard is the documented mechanism behind ``truth_subscription_months``:
late deliveries, claims, low reviews, a price increase, skips and newness raise it;
redeemed points and engagement lower it (docs/world.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ppx.data import columns as C

if TYPE_CHECKING:
    from ppx.data.world.simulator import Simulator


def renewals(sim: Simulator, m: int):
    """Renewal orders due in month ``m`` (customer, time, product, subscription)."""
    p, rng, cal = sim.p, sim.rng, sim.cal
    n_sub = len(sim.sub_active)
    if n_sub == 0:
        e = np.zeros(0, dtype=np.int64)
        return e, np.zeros(0), e, e
    m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
    s = np.flatnonzero(sim.sub_active)
    start = np.asarray(sim.subs["start"])[s]
    day = np.asarray(sim.subs["day"])[s]
    plan = np.asarray(sim.subs["plan"])[s]
    # Monthly plans renew on their day of month; biweekly plans twice.
    t1 = m0 + day
    rows_s, rows_t = [s], [t1]
    bi = plan == "biweekly"
    rows_s.append(s[bi])
    rows_t.append(t1[bi] + 14)
    ss = np.concatenate(rows_s)
    tt = np.concatenate(rows_t)
    ok = (tt > np.concatenate([start, start[bi]]) + 1) & (tt < m1)
    ss, tt = ss[ok], tt[ok]
    paused = sim.sub_paused_until[ss] > tt
    skip = (
        rng.random(len(ss)) < p.skip_prob * (1.4 - sim.engagement[sub_customers(sim, ss)])
    ) & ~paused
    cancelled = sim.sub_cancel[ss] <= tt
    record_sub_events(sim, ss[skip & ~cancelled], tt[skip & ~cancelled], "skip")
    sim.sub_skipped_month[np.unique(ss[skip | paused])] = m
    go = ~skip & ~paused & ~cancelled
    ss, tt = ss[go], tt[go]
    record_sub_events(sim, ss, tt, "renew")
    hour = np.clip(rng.normal(6, 1.0, len(tt)), 0, 23.9) / 24
    return sub_customers(sim, ss), np.floor(tt) + hour, np.asarray(sim.subs["product"])[ss], ss


def sub_customers(sim: Simulator, s):
    """The customer of each subscription index in ``s``."""
    return np.asarray(sim.subs["customer"], dtype=np.int64)[s]


def record_sub_events(sim: Simulator, s, t, kind: str, old=None, new=None) -> None:
    """One subscription event row per index in ``s``."""
    n = len(s)
    if n == 0:
        return
    sim.A["sub_events"].add(
        sub=np.asarray(s, dtype=np.int64),
        t=np.asarray(t, dtype=float),
        kind=np.full(n, kind, dtype=object),
        old=np.full(n, np.nan) if old is None else np.asarray(old, dtype=float),
        new=np.full(n, np.nan) if new is None else np.asarray(new, dtype=float),
    )


# --- orders, shipments and everything after ------------------------------------------


def start_subscriptions(sim: Simulator, cust, item, t) -> None:
    """New subscriptions at 90% of the list price, monthly or biweekly."""
    rng = sim.rng
    k0 = len(sim.sub_active)
    k = len(cust)
    plan = np.where(rng.random(k) < 0.25, "biweekly", "monthly")
    price = (sim.price[item] * 0.9).round(2)
    sim.subs["customer"].extend(cust.tolist())
    sim.subs["product"].extend(item.tolist())
    sim.subs["plan"].extend(plan.tolist())
    sim.subs["start"].extend(t.tolist())
    sim.subs["price"].extend(price.tolist())
    sim.subs["day"].extend(rng.integers(0, 27, k).tolist())
    sim.sub_active = np.concatenate([sim.sub_active, np.ones(k, dtype=bool)])
    sim.sub_cancel = np.concatenate([sim.sub_cancel, np.full(k, np.inf)])
    sim.sub_paused_until = np.concatenate([sim.sub_paused_until, np.zeros(k)])
    sim.sub_skipped_month = np.concatenate([sim.sub_skipped_month, np.full(k, -99)])
    sim.sub_price_month = np.concatenate([sim.sub_price_month, np.full(k, -99)])
    sim.sub_price = np.concatenate([sim.sub_price, price])
    sim.sub_of[cust] = np.arange(k0, k0 + k)
    record_sub_events(sim, np.arange(k0, k0 + k), t, "start")


def churn_month(sim: Simulator, m: int) -> None:
    """Monthly hazard for every active subscription, from last months' experience."""
    p, rng, cal = sim.p, sim.rng, sim.cal
    m0, m1 = cal.month_starts[m], cal.month_starts[m + 1]
    if m == p.price_increase_month and len(sim.sub_active):
        hit = np.flatnonzero(sim.sub_active & (rng.random(len(sim.sub_active)) < 0.5))
        old = sim.sub_price[hit]
        sim.sub_price[hit] = (old * (1 + p.price_increase)).round(2)
        sim.sub_price_month[hit] = m
        record_sub_events(
            sim, hit, rng.uniform(m0, m0 + 3, len(hit)), "price_change", old, sim.sub_price[hit]
        )
    s = np.flatnonzero(sim.sub_active)
    if m + 1 > p.months or len(s) == 0:
        return
    # Pauses start this month and last one or two months.
    pz = s[rng.random(len(s)) < p.pause_prob]
    pt = rng.uniform(m0, m1, len(pz))
    sim.sub_paused_until[pz] = pt + rng.choice([30, 60], len(pz))
    record_sub_events(sim, pz, pt, "pause")
    record_sub_events(sim, pz, sim.sub_paused_until[pz], "resume")
    sim.sub_skipped_month[pz] = m
    c = sub_customers(sim, s)
    start = np.asarray(sim.subs["start"])[s]
    lo2 = max(m - 1, 0)
    lo3 = max(m - 2, 0)
    late2 = sim.late_by_month[c, lo2 : m + 1].sum(1)
    claim3 = sim.claim_by_month[c, lo3 : m + 1].sum(1) > 0
    low3 = sim.lowrev_by_month[c, lo3 : m + 1].sum(1) > 0
    red3 = sim.redeem_by_month[c, lo3 : m + 1].sum(1) > 0
    price = sim.sub_price_month[s] >= m - 1
    skipped = sim.sub_skipped_month[s] == m
    tenure_new = (m1 - start) < 90
    x = (
        p.churn_base
        + p.churn_late_effect * np.minimum(late2, 3)
        + p.churn_claim_effect * claim3
        + p.churn_low_review_effect * low3
        + p.churn_price_effect * price
        + p.churn_skip_effect * skipped
        + p.churn_redeem_effect * red3
        + p.churn_new_effect * tenure_new
        + p.churn_engagement_effect * (sim.engagement[c] - 0.4)
        + sim.ctruth[C.FRAILTY].to_numpy()[c]
    )
    h = 1 / (1 + np.exp(-x))
    churn = rng.random(len(s)) < h
    sim.A["sub_months"].add(sub=s, month=np.full(len(s), m + 1), hazard=h, churned=churn)
    k = s[churn]
    ct = rng.uniform(m1, cal.month_starts[m + 2] if m + 2 <= p.months else m1 + 30, len(k))
    sim.sub_cancel[k] = ct
    sim.sub_active[k] = False
    sim.sub_of[sub_customers(sim, k)] = -1
    keep = ct < cal.month_starts[-1]
    record_sub_events(sim, k[keep], ct[keep], "cancel")
