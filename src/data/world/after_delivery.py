"""What follows an order: returns, claims, reviews, views, messages and points.

The steps run in a fixed order on the shared random stream, so the same seed gives the
same world; reordering them changes every table after the first moved draw.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ppx.data import columns as C
from ppx.data.world.loyalty import record_points
from ppx.data.world.messages import send_messages
from ppx.data.world.returns_claims import draw_claims, draw_returns

if TYPE_CHECKING:
    from ppx.data.world.shipments import Shipped
    from ppx.data.world.simulator import Simulator


def after_delivery(
    sim: Simulator, oid, cust, t, ship: Shipped, value, kind, line_order, line_item, qty, unit
) -> None:
    """Everything a batch of orders causes after it ships (one month's orders)."""
    delivered = ship.delivered_obs  # NaN unless delivered within the horizon
    ok = ship.status == "delivered"
    ret_cust, ret_t, ret_amount = draw_returns(
        sim, oid, cust, delivered, ship.late, ok, kind, line_order, line_item, qty, unit
    )
    draw_claims(sim, oid, cust, t, delivered, ship.status, ship.gps, ship.signature, value)
    _reviews(sim, oid, cust, delivered, ok, line_order, line_item, ship.deliv_day, ship.promised)
    _views(sim, cust, t, kind, line_order, line_item)
    _order_messages(sim, cust, t, delivered, ship.late, ship.status, ship.promised)
    _order_points(sim, cust, delivered, ok, value, ret_cust, ret_t, ret_amount)


def _reviews(sim, oid, cust, delivered, ok, line_order, line_item, deliv_day, promised):
    """Ratings fall with lateness and rise with taste match; a review earns points."""
    p, rng, cal = sim.p, sim.rng, sim.cal
    n = len(oid)
    horizon = cal.month_starts[-1]
    eng = sim.engagement[cust]
    li_first = np.r_[True, line_order[1:] != line_order[:-1]]
    rv = ok & (rng.random(n) < p.review_prob * (0.5 + eng))
    rv_t = delivered + rng.uniform(1, 12, n)
    rv &= rv_t < horizon
    ri = np.flatnonzero(rv)
    first_item = line_item[li_first]
    late_days = np.clip(deliv_day - promised, 0, 6)
    match = np.einsum("ij,ij->i", sim.taste[cust[ri]], sim.item_emb[first_item[ri]]) / 3
    rating = np.clip(
        np.round(4.2 - 0.7 * late_days[ri] + match + rng.normal(0, 0.8, len(ri))), 1, 5
    ).astype(np.int64)
    sim.A["reviews"].add(
        cust=cust[ri], item=first_item[ri], order=oid[ri], t=rv_t[ri], rating=rating
    )
    rmo = np.clip(cal.month_of(rv_t[ri]), 0, p.months)
    low = rating <= 2
    np.add.at(sim.lowrev_by_month, (cust[ri][low], rmo[low]), 1)
    record_points(sim, cust[ri], rv_t[ri], "review_bonus", np.full(len(ri), 50))
    sim.points[cust[ri]] += 50


def _views(sim, cust, t, kind, line_order, line_item):
    """Product views shortly before one-off purchases: the item itself or a browse."""
    p, rng = sim.p, sim.rng
    li_c = cust[line_order]
    oneoff = np.flatnonzero(kind[line_order] == 0)
    nv = rng.poisson(p.views_per_order, len(oneoff))
    vi = np.repeat(oneoff, nv)
    browse = rng.random(len(vi)) < 0.5
    v_item = np.where(browse, sim.choose_items(li_c[vi], np.full(len(vi), -1)), line_item[vi])
    v_t = t[line_order[vi]] - rng.uniform(0.01, 2.0, len(vi))
    sim.A["views"].add(cust=li_c[vi], item=v_item, t=v_t)


def _order_messages(sim, cust, t, delivered, late, status, promised):
    """Transactional messages per order, and support contacts after bad experiences."""
    p, rng = sim.p, sim.rng
    n = len(cust)
    horizon = sim.cal.month_starts[-1]
    ok = status == "delivered"
    lost = status == "lost"
    msgs = [("order_confirmation", t + 0.001, np.ones(n, dtype=bool))]
    msgs.append(("shipped", t + 0.3, status != "lost"))
    notice = late & (rng.random(n) < p.delay_notice_prob)
    msgs.append(("delay_notice", promised - 0.2, notice))
    msgs.append(("review_request", np.where(ok, delivered + 2, np.nan), ok & (rng.random(n) < 0.5)))
    for mtype, mt, mask in msgs:
        idx = np.flatnonzero(mask & (mt < horizon))
        send_messages(sim, cust[idx], mt[idx], mtype, "outbound")
    sc = (late & (rng.random(n) < 0.25)) | (lost & (rng.random(n) < 0.7))
    idx = np.flatnonzero(sc)
    sc_t = np.where(lost[idx], t[idx] + 8, delivered[idx] + rng.uniform(0.1, 3, len(idx)))
    keep = sc_t < horizon
    send_messages(sim, cust[idx][keep], sc_t[keep], "support_contact", "inbound")


def _order_points(sim, cust, delivered, ok, value, ret_cust, ret_t, ret_amount):
    """Points earned on delivered orders, reversed on refunds, and referral bonuses."""
    earn = np.flatnonzero(ok)
    pts = np.floor(value[earn]).astype(np.int64) * np.where(sim.tier[cust[earn]] >= 2, 2, 1)
    record_points(sim, cust[earn], delivered[earn] + 0.01, "earn", pts)
    np.add.at(sim.points, cust[earn], pts)
    np.add.at(sim.spend_12m, cust[earn], value[earn])
    rv_pts = -np.floor(ret_amount).astype(np.int64)
    record_points(sim, ret_cust, ret_t + 1, "reversal", rv_pts)
    np.add.at(sim.points, ret_cust, rv_pts)
    # The referrer earns a bonus on a referee's first delivered order.
    ref_by = sim.customers[C.REFERRED_BY].to_numpy(dtype=float, na_value=np.nan)
    firsts = np.flatnonzero(ok & ~np.isnan(ref_by[cust]) & (sim.spend_12m[cust] == value))
    if len(firsts):
        rc = ref_by[cust[firsts]].astype(np.int64) - 1
        record_points(
            sim, rc, delivered[firsts] + 0.02, "referral_bonus", np.full(len(firsts), 200)
        )
        np.add.at(sim.points, rc, 200)
