"""Turn the accumulated simulation into the canonical tables and the ground truth.

Simulation time is float days since the start; here it becomes timestamps, indices
become 1-based ids, and every event table is numbered in time order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.world.calendar import days_to_ts
from ppx.data.world.catalogue import TASTE_DIM
from ppx.data.world.geography import WAREHOUSE_REGION
from ppx.data.world.params import World
from ppx.data.world.returns_claims import request_tables
from ppx.feedback.textgen import write_feedback_text

if TYPE_CHECKING:
    from ppx.data.world.simulator import Simulator

#: message types that need marketing consent (the policy catalogue's "marketing")
MARKETING_MESSAGES = ("review_request", "promotion", "win_back", "anniversary", "thank_you")


def assemble(sim: Simulator) -> World:
    """The canonical tables and the ground truth, from the accumulated months."""
    t0 = sim.cal.t0
    ts = lambda x: days_to_ts(t0, x)  # noqa: E731
    A = {k: v.frame() for k, v in sim.A.items()}
    o, s = A["orders"], A["ship"]
    sub_ids = np.arange(1, len(sim.sub_active) + 1, dtype=np.int64)
    sub_id_of = lambda idx: pd.array(np.where(idx >= 0, idx + 1, pd.NA), dtype="Int64")  # noqa: E731
    orders = pd.DataFrame(
        {
            C.ORDER_ID: o["order"],
            C.CUSTOMER_ID: o["cust"] + 1,
            C.ORDERED_AT: ts(o["t"]),
            C.CHANNEL: np.where(sim.rng.random(len(o)) < 0.45, "app", "web"),
            C.WAREHOUSE: o["wh"],
            C.ORIGIN_REGION: o["wh"].map(WAREHOUSE_REGION),
            C.DEST_REGION: o["dest"],
            C.DISTANCE_KM: o["dist"],
            C.CARRIER: o["carrier"],
            C.SERVICE_LEVEL: o["svc"],
            C.PROMISED_DAYS: o["sla"],
            C.PROMISED_DATE: ts(o["promised"]).dt.normalize(),
            C.ORDER_VALUE: o["value"],
            C.DISCOUNT: o["discount"],
            C.IS_RENEWAL: o["kind"] == 2,
            C.SUBSCRIPTION_ID: sub_id_of(o["sub"].to_numpy()),
        }
    )
    items = pd.DataFrame(
        {
            C.ORDER_ID: A["items"]["order"],
            C.LINE_NO: A["items"]["line"].astype(np.int64),
            C.PRODUCT_ID: A["items"]["item"] + 1,
            C.QUANTITY: A["items"]["qty"].astype(np.int64),
            C.UNIT_PRICE: A["items"]["unit"],
        }
    )
    shipments = pd.DataFrame(
        {
            C.SHIPMENT_ID: s["order"],
            C.ORDER_ID: s["order"],
            C.CARRIER: o["carrier"],
            C.SERVICE_LEVEL: o["svc"],
            C.SHIPPED_AT: ts(s["shipped"]),
            C.DELIVERED_AT: ts(s["delivered"]),
            C.STATUS: s["status"],
            C.WEIGHT_KG: s["weight"],
            C.SIGNATURE: s["signature"].astype(bool),
            C.GPS_DISTANCE_M: s["gps"],
        }
    )
    truth_ship = pd.DataFrame(
        {
            C.SHIPMENT_ID: s["order"],
            C.TRUE_MU: s["mu"],
            C.TRUE_SIGMA: s["sigma"],
            "true_delivered_at": ts(s["true_delivered"]),
        }
    )
    tracking = tracking_table(sim, o, s, ts)
    subs = subscriptions_table(sim, sub_ids, ts)
    se = A["sub_events"]
    sub_events = pd.DataFrame(
        {
            C.SUBSCRIPTION_ID: se["sub"] + 1,
            C.EVENT_AT: ts(se["t"]),
            C.EVENT_TYPE: se["kind"].astype(str),
            C.OLD_VALUE: se["old"],
            C.NEW_VALUE: se["new"],
        }
    ).sort_values([C.EVENT_AT, C.SUBSCRIPTION_ID], kind="stable")
    sub_events.insert(0, C.EVENT_ID, np.arange(1, len(sub_events) + 1, dtype=np.int64))
    returns, truth_returns = request_tables(
        A["returns"],
        C.RETURN_ID,
        lambda r: {
            C.ORDER_ID: r["order"].to_numpy(),
            C.CUSTOMER_ID: r["cust"].to_numpy() + 1,
            C.PRODUCT_ID: r["item"].to_numpy() + 1,
            C.REQUESTED_AT: ts(r["t"].to_numpy()),
            C.REASON: r["reason"].to_numpy().astype(str),
            C.REFUND_AMOUNT: r["refund"].to_numpy(),
        },
    )
    claims, truth_claims = request_tables(
        A["claims"],
        C.CLAIM_ID,
        lambda cl: {
            C.ORDER_ID: cl["order"].to_numpy(),
            C.SHIPMENT_ID: cl["order"].to_numpy(),
            C.CUSTOMER_ID: cl["cust"].to_numpy() + 1,
            C.CLAIMED_AT: ts(cl["t"].to_numpy()),
            C.CLAIM_TYPE: cl["ctype"].to_numpy().astype(str),
            C.AMOUNT: cl["amount"].to_numpy(),
        },
    )
    rv = A["reviews"].sort_values("t", kind="stable")
    reviews = pd.DataFrame(
        {
            C.REVIEW_ID: np.arange(1, len(rv) + 1, dtype=np.int64),
            C.CUSTOMER_ID: rv["cust"].to_numpy() + 1,
            C.PRODUCT_ID: rv["item"].to_numpy() + 1,
            C.ORDER_ID: rv["order"].to_numpy(),
            C.CREATED_AT: ts(rv["t"].to_numpy()),
            C.RATING: rv["rating"].to_numpy().astype(np.int64),
        }
    )
    interactions = interactions_table(sim, A, items, orders, ts)
    mg = A["messages"].sort_values("t", kind="stable")
    # Marketing goes only to customers who opted into e-mail. Dropped here, after the
    # simulation, so the random stream (and every other table) is what it always was.
    opted_in = sim.customers[C.EMAIL_OPT_IN].to_numpy(dtype=bool)
    marketing = mg["mtype"].isin(MARKETING_MESSAGES).to_numpy()
    mg = mg[~marketing | opted_in[mg["cust"].to_numpy(dtype=np.int64)]]
    messages = pd.DataFrame(
        {
            C.MESSAGE_ID: np.arange(1, len(mg) + 1, dtype=np.int64),
            C.CUSTOMER_ID: mg["cust"].to_numpy() + 1,
            C.SENT_AT: ts(mg["t"].to_numpy()),
            C.CHANNEL: mg["channel"].to_numpy().astype(str),
            C.DIRECTION: mg["direction"].to_numpy().astype(str),
            C.MESSAGE_TYPE: mg["mtype"].to_numpy().astype(str),
            C.OPENED: mg["opened"].to_numpy().astype(bool),
            C.CLICKED: mg["clicked"].to_numpy().astype(bool),
        }
    )
    lo = A["loyalty"]
    lo = lo[lo["t"] < sim.cal.month_starts[-1]].sort_values("t", kind="stable")
    loyalty = pd.DataFrame(
        {
            C.EVENT_ID: np.arange(1, len(lo) + 1, dtype=np.int64),
            C.CUSTOMER_ID: lo["cust"].to_numpy() + 1,
            C.EVENT_AT: ts(lo["t"].to_numpy()),
            C.EVENT_TYPE: lo["kind"].to_numpy().astype(str),
            C.POINTS: lo["points"].to_numpy().astype(np.int64),
            C.TIER: pd.array(lo["tier"].to_numpy(), dtype="str"),
        }
    )
    sm = A["sub_months"]
    truth_sub = pd.DataFrame(
        {
            C.SUBSCRIPTION_ID: sm["sub"].to_numpy() + 1,
            C.MONTH: (t0 + pd.to_timedelta(sim.cal.month_starts[sm["month"].to_numpy()], unit="D")),
            C.TRUE_HAZARD: sm["hazard"].to_numpy(),
            C.CHURNED: sm["churned"].to_numpy().astype(bool),
        }
    )
    products = sim.products.copy()
    truth_customers = sim.ctruth.drop(columns=["_signup_days"]).copy()
    for k in range(TASTE_DIM):
        truth_customers[f"{C.TASTE}_{k}"] = sim.taste[:, k]
    tables = {
        C.CUSTOMERS: sim.customers,
        C.PRODUCTS: products,
        C.ORDERS: orders,
        C.ORDER_ITEMS: items,
        C.SHIPMENTS: shipments,
        C.TRACKING_EVENTS: tracking,
        C.SUBSCRIPTIONS: subs,
        C.SUBSCRIPTION_EVENTS: sub_events.reset_index(drop=True),
        C.RETURNS: returns,
        C.CLAIMS: claims,
        C.REVIEWS: reviews,
        C.INTERACTIONS: interactions,
        C.MESSAGES: messages,
        C.LOYALTY_EVENTS: loyalty,
    }
    # Review titles/bodies and return comments, written from what happened (own seed stream).
    feedback_truth = write_feedback_text(tables, sim.p.seed)
    truth = {
        **feedback_truth,
        C.TRUTH_SHIPMENTS: truth_ship,
        C.TRUTH_SUBSCRIPTION_MONTHS: truth_sub,
        C.TRUTH_CUSTOMERS: truth_customers,
        C.TRUTH_RETURNS: truth_returns,
        C.TRUTH_CLAIMS: truth_claims,
        "truth_products": pd.DataFrame(
            {
                C.PRODUCT_ID: products[C.PRODUCT_ID],
                "successor_id": sim.successor + 1,
                "popularity": sim.item_bias,
                **{f"{C.TASTE}_{k}": sim.item_emb[:, k] for k in range(TASTE_DIM)},
            }
        ),
    }
    return World(tables=tables, truth=truth, params=sim.p)


def tracking_table(sim, o, s, ts):
    rng = sim.rng
    horizon = sim.cal.month_starts[-1]
    t = o["t"].to_numpy()
    shipped = s["shipped"].to_numpy()
    deliv = s["true_delivered"].to_numpy()
    status = s["status"].to_numpy()
    wh_reg = o["wh"].map(WAREHOUSE_REGION).to_numpy()
    dest = o["dest"].to_numpy()
    sid = s["order"].to_numpy()
    hub = shipped + (deliv - shipped) * rng.beta(4, 4, len(t))
    ofd = np.maximum(hub, deliv - rng.uniform(0.08, 0.3, len(t)))
    lost = status == "lost"
    parts = [
        ("label_created", t + 0.01, wh_reg, np.ones(len(t), dtype=bool)),
        ("picked_up", shipped, wh_reg, np.ones(len(t), dtype=bool)),
        (
            "hub_scan",
            hub,
            np.where(rng.random(len(t)) < 0.5, wh_reg, dest),
            np.ones(len(t), dtype=bool),
        ),
        ("out_for_delivery", ofd, dest, ~lost),
        ("delivered", deliv, dest, status == "delivered"),
        ("exception", hub + 0.5, dest, lost),
    ]
    frames = []
    for kind, when, where, mask in parts:
        keep = mask & (when < horizon) & ~np.isnan(when)
        frames.append(pd.DataFrame({"s": sid[keep], "t": when[keep], "k": kind, "r": where[keep]}))
    ev = pd.concat(frames, ignore_index=True).sort_values(["t", "s"], kind="stable")
    return pd.DataFrame(
        {
            C.EVENT_ID: np.arange(1, len(ev) + 1, dtype=np.int64),
            C.SHIPMENT_ID: ev["s"].to_numpy(),
            C.EVENT_AT: ts(ev["t"].to_numpy()),
            C.EVENT_TYPE: ev["k"].to_numpy().astype(str),
            C.LOCATION_REGION: ev["r"].to_numpy().astype(str),
        }
    )


def subscriptions_table(sim, sub_ids, ts):
    S = sim.subs
    if len(sub_ids) == 0:
        return pd.DataFrame(
            {
                C.SUBSCRIPTION_ID: np.zeros(0, dtype=np.int64),
                C.CUSTOMER_ID: np.zeros(0, dtype=np.int64),
                C.PRODUCT_ID: np.zeros(0, dtype=np.int64),
                C.PLAN: pd.Series([], dtype="str"),
                C.PRICE: np.zeros(0),
                C.STARTED_AT: pd.Series([], dtype="datetime64[ns]"),
                C.CANCELLED_AT: pd.Series([], dtype="datetime64[ns]"),
            }
        )
    cancel = np.where(
        np.isfinite(sim.sub_cancel) & (sim.sub_cancel < sim.cal.month_starts[-1]),
        sim.sub_cancel,
        np.nan,
    )
    return pd.DataFrame(
        {
            C.SUBSCRIPTION_ID: sub_ids,
            C.CUSTOMER_ID: np.asarray(S["customer"], dtype=np.int64) + 1,
            C.PRODUCT_ID: np.asarray(S["product"], dtype=np.int64) + 1,
            C.PLAN: np.asarray(S["plan"]).astype(str),
            C.PRICE: np.asarray(S["price"]),  # price at start; changes are events
            C.STARTED_AT: ts(np.asarray(S["start"])),
            C.CANCELLED_AT: ts(cancel),
        }
    )


def interactions_table(sim, A, items, orders, ts):
    v = A["views"]
    oi = items.merge(orders[[C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT, C.IS_RENEWAL]], on=C.ORDER_ID)
    buys = pd.DataFrame(
        {
            C.CUSTOMER_ID: oi[C.CUSTOMER_ID].to_numpy(),
            C.PRODUCT_ID: oi[C.PRODUCT_ID].to_numpy(),
            C.EVENT_AT: oi[C.ORDERED_AT].to_numpy(),
            C.EVENT_TYPE: np.where(oi[C.IS_RENEWAL], "renewal", "purchase"),
        }
    )
    views = pd.DataFrame(
        {
            C.CUSTOMER_ID: v["cust"].to_numpy() + 1,
            C.PRODUCT_ID: v["item"].to_numpy() + 1,
            C.EVENT_AT: ts(v["t"].to_numpy()).to_numpy(),
            C.EVENT_TYPE: "view",
        }
    )
    signup = sim.customers.set_index(C.CUSTOMER_ID)[C.SIGNUP_AT]
    views = views[views[C.EVENT_AT].to_numpy() >= signup.loc[views[C.CUSTOMER_ID]].to_numpy()]
    out = pd.concat([views, buys], ignore_index=True)
    out = out.sort_values([C.EVENT_AT, C.CUSTOMER_ID], kind="stable").reset_index(drop=True)
    out[C.EVENT_TYPE] = out[C.EVENT_TYPE].astype(str)
    return out
