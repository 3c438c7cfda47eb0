"""One month's orders: their lines and prices, the parcel, and what follows delivery."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ppx.data import columns as C
from ppx.data.world.after_delivery import after_delivery
from ppx.data.world.shipments import ship_orders
from ppx.data.world.subscriptions import start_subscriptions

if TYPE_CHECKING:
    from ppx.data.world.simulator import Simulator


def emit_orders(sim: Simulator, m: int, cust, t, first, kind, sub_idx) -> None:
    """Record orders placed in month ``m`` (sorted by time) and everything they cause.

    ``kind`` is 0 for a one-off order, 1 for a replenishment and 2 for a subscription
    renewal (``sub_idx`` is then the subscription).
    """
    p, rng, cal = sim.p, sim.rng, sim.cal
    n = len(cust)
    oid = np.arange(sim.next_order_id, sim.next_order_id + n, dtype=np.int64)
    sim.next_order_id += n
    # Extra lines on one-off orders.
    n_extra = np.where(kind == 0, rng.poisson(0.35, n), 0)
    ex_order = np.repeat(np.arange(n), n_extra)
    ex_item = sim.choose_items(cust[ex_order], np.full(len(ex_order), -1))
    line_order = np.concatenate([np.arange(n), ex_order])
    line_item = np.concatenate([first, ex_item])
    srt = np.lexsort((np.arange(len(line_order)), line_order))
    line_order, line_item = line_order[srt], line_item[srt]
    # Drop duplicate items within one order.
    key = line_order * 10_000 + line_item
    _, uniq = np.unique(key, return_index=True)
    uniq.sort()
    line_order, line_item = line_order[uniq], line_item[uniq]
    qty = np.where(sim.consumable[line_item], 1 + rng.poisson(0.3, len(line_item)), 1)
    sub_price = np.full(n, np.nan)
    is_sub = sub_idx >= 0
    sub_price[is_sub] = sim.sub_price[sub_idx[is_sub]]
    unit = np.where(kind[line_order] == 2, sub_price[line_order], sim.price[line_item]).round(2)
    line_no = np.arange(len(line_order)) - np.searchsorted(line_order, line_order)
    gross = np.bincount(line_order, weights=unit * qty, minlength=n)
    discount = np.where(rng.random(n) < 0.15, (gross * rng.choice([0.1, 0.15, 0.2], n)), 0)
    discount = np.where(kind == 2, 0, discount).round(2)
    value = (gross - discount).round(2)
    weight = np.bincount(line_order, weights=sim.weight[line_item] * qty, minlength=n)
    sim.A["items"].add(order=oid[line_order], line=line_no + 1, item=line_item, qty=qty, unit=unit)
    s = ship_orders(sim, m, cust, t, value, kind, weight)
    sim.A["orders"].add(
        order=oid,
        cust=cust,
        t=t,
        wh=s.warehouse,
        dest=s.dest,
        dist=s.dist,
        carrier=np.array(C.CARRIERS)[s.carrier_i],
        svc=np.array(C.SERVICE_LEVELS)[s.service_i],
        sla=s.sla.astype(np.int64),
        promised=s.promised,
        value=value,
        discount=discount,
        kind=kind,
        sub=sub_idx,
    )
    horizon = cal.month_starts[-1]
    sim.A["ship"].add(
        order=oid,
        shipped=np.where(s.shipped < horizon, s.shipped, np.nan),
        delivered=s.delivered_obs,
        status=s.status,
        weight=weight.round(3),
        signature=s.signature,
        gps=s.gps,
        mu=s.mu,
        sigma=s.sigma,
        true_delivered=s.delivered,
        late=s.late,
    )
    # Monthly experience counters used by the churn hazard (by delivery month).
    dm = np.clip(cal.month_of(np.where(np.isnan(s.delivered_obs), 0, s.delivered_obs)), 0, p.months)
    np.add.at(sim.late_by_month, (cust[s.late], dm[s.late]), 1)
    after_delivery(sim, oid, cust, t, s, value, kind, line_order, line_item, qty, unit)
    sim.last_item[cust] = first
    cons = sim.consumable[first]
    sim.due_item[cust[cons]] = first[cons]
    sim.due_at[cust[cons]] = t[cons] + sim.replenish[first[cons]] * rng.uniform(
        0.85, 1.15, cons.sum()
    )
    # New subscriptions from one-off purchases of subscribable items.
    cand = (kind != 2) & sim.subscribable[first] & (sim.sub_of[cust] < 0)
    new = np.flatnonzero(cand & (rng.random(n) < p.subscribe_prob))
    if len(new):
        _, first_idx = np.unique(cust[new], return_index=True)
        new = new[first_idx]
        start_subscriptions(sim, cust[new], first[new], t[new] + 0.5)
