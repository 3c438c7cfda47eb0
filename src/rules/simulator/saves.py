"""Save offers in the replay: each real cancellation of the world first meets the policy's offer.

The world's cancellations are the moments a subscriber asks to cancel. For each, the
replay builds what the decision service would know: the subscription (price at that
time, cadence from the plan, recent skips), the churn risk (the stand-in score) and the
churn model's reason codes, and asks :func:`ppx.rules.subscriptions.choose_save_offer`
for the policy's offer, exactly as the cancel endpoint does.

Stand-in reason codes: the world's planted hazard drivers of the cancellation month,
from observable history (late deliveries in the two months before, a claim or a low
review in three, a price rise in two, a skip or pause in the month before, tenure under
90 days), each with its true logit effect as the contribution. A churn model's SHAP
reasons would name the same drivers, less exactly.

Acceptance (an assumption; no world records how people answer offers): a subscriber
accepts with probability ``accept_base x fit x (1 - r)``, where ``r`` is their true
90-day churn risk at that month (a subscriber the world pushes hard to leave is hard to
keep), ``fit`` is 1 when the offer answers one of their true drivers (a discount for a
price rise, a skip or cadence change after skips, a swap after a low review, a pause or
discount after late deliveries) and ``mismatch`` otherwise. Figures are expectations
(sums of probabilities), not draws, so both policies are compared without sampling noise.

Saved revenue: an accepted offer keeps the subscription; its expected revenue over
``horizon_months`` is the monthly revenue (price x 30 / cadence, at the new cadence
after a cadence change) times the survival under the subscriber's true hazard of that
month, minus what the offer gives up (the discount, the swap's handling, a skipped
delivery, the deliveries of a pause).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.simulator.inputs import WorldEvents, py_datetimes
from ppx.rules.subscriptions.lifecycle import Subscription
from ppx.rules.subscriptions.offers import choose_save_offer

CADENCE = {"monthly": 30, "biweekly": 14}
#: Which reason group each stand-in reason feature belongs to (the default policy's map).
FIT = {
    "discount": {"price", "delivery"},
    "skip": {"too_much_product"},
    "cadence": {"too_much_product", "price"},
    "swap": {"product"},
    "pause": {"delivery", "too_much_product"},
}


@dataclass(frozen=True)
class SaveAssumptions:
    accept_base: float = 0.4
    mismatch: float = 0.4
    horizon_months: int = 12


@dataclass
class SaveTally:
    """One policy's save offers over the replay."""

    cancels: int = 0
    offers: int = 0
    accepted: float = 0.0  # expected number
    saved_revenue: float = 0.0  # expected, net of what the offers give up
    cost: float = 0.0  # expected money given up by accepted offers
    by_kind: dict = field(default_factory=lambda: defaultdict(int))


def _month_start(t: pd.Timestamp) -> pd.Timestamp:
    return pd.Timestamp(t.year, t.month, 1)


def cancel_requests(ev: WorldEvents, truth, sub_events: pd.DataFrame) -> dict:
    """Arrays of every cancellation of the replayed subscribers, with reasons and risk."""
    subs = ev.subs[ev.subs[C.CANCELLED_AT].notna()].reset_index(drop=True)
    p = ev.params
    eff = {
        "late_2m": p.get("churn_late_effect", 0.55),
        "claims_3m": p.get("churn_claim_effect", 0.8),
        "low_reviews_3m": p.get("churn_low_review_effect", 0.5),
        "price_increase_2m": p.get("churn_price_effect", 0.45),
        "skips_1m": p.get("churn_skip_effect", 0.35),
        "tenure_under_90d": p.get("churn_new_effect", 0.45),
    }
    o = ev.orders
    delivered = pd.to_datetime(o[C.DELIVERED_AT])
    late = o[delivered.dt.normalize() > pd.to_datetime(o[C.PROMISED_DATE])]
    late_at = _by_customer(late[C.CUSTOMER_ID], pd.to_datetime(late[C.DELIVERED_AT]))
    claim_at = _by_customer(ev.claims[C.CUSTOMER_ID], pd.to_datetime(ev.claims[C.CLAIMED_AT]))
    low = ev.reviews[ev.reviews[C.RATING] <= 2]
    low_at = _by_customer(low[C.CUSTOMER_ID], pd.to_datetime(low[C.CREATED_AT]))
    se = sub_events
    skip_at = _by_customer(
        se.loc[se[C.EVENT_TYPE].isin(["skip", "pause"]), C.SUBSCRIPTION_ID],
        pd.to_datetime(se.loc[se[C.EVENT_TYPE].isin(["skip", "pause"]), C.EVENT_AT]),
    )
    pc = se[se[C.EVENT_TYPE] == "price_change"].sort_values(C.EVENT_AT)
    price_changes = {
        int(s): (
            pd.to_datetime(g[C.EVENT_AT]).to_numpy(),
            g[C.OLD_VALUE].to_numpy(),
            g[C.NEW_VALUE].to_numpy(),
        )
        for s, g in pc.groupby(C.SUBSCRIPTION_ID)
    }
    sm = truth[C.TRUTH_SUBSCRIPTION_MONTHS]
    hz = sm[sm[C.CHURNED]].set_index(C.SUBSCRIPTION_ID)[C.TRUE_HAZARD]
    succ = truth.get("truth_products")
    nxt = (
        succ.set_index(C.PRODUCT_ID)["successor_id"] if succ is not None else pd.Series(dtype=float)
    )
    rows = defaultdict(list)
    for sid, cid, pid, plan, price, started, t in zip(
        subs[C.SUBSCRIPTION_ID].tolist(),
        subs[C.CUSTOMER_ID].tolist(),
        subs[C.PRODUCT_ID].tolist(),
        subs[C.PLAN].astype(str).tolist(),
        subs[C.PRICE].astype(float).tolist(),
        pd.to_datetime(subs[C.STARTED_AT]),
        pd.to_datetime(subs[C.CANCELLED_AT]),
        strict=True,
    ):
        m0 = _month_start(t)
        reasons = []
        n_late = _count(late_at.get(cid), m0 - pd.DateOffset(months=2), m0)
        if n_late:
            reasons.append(("late_2m", eff["late_2m"] * min(n_late, 3)))
        if _count(claim_at.get(cid), m0 - pd.DateOffset(months=3), m0):
            reasons.append(("claims_3m", eff["claims_3m"]))
        if _count(low_at.get(cid), m0 - pd.DateOffset(months=3), m0):
            reasons.append(("low_reviews_3m", eff["low_reviews_3m"]))
        ch = price_changes.get(sid)
        price_now = price
        if ch is not None:
            ts, old, new = ch
            before = ts < np.datetime64(t)
            price_now = float(new[before][-1]) if before.any() else float(old[0])
            if ((ts >= np.datetime64(m0 - pd.DateOffset(months=2))) & before).any():
                reasons.append(("price_increase_2m", eff["price_increase_2m"]))
        skips = _count(skip_at.get(sid), m0 - pd.DateOffset(months=1), t)
        if skips:
            reasons.append(("skips_1m", eff["skips_1m"]))
        if (m0 - started) < pd.Timedelta(days=90):
            reasons.append(("tenure_under_90d", eff["tenure_under_90d"]))
        swap = nxt.get(pid)
        rows["sid"].append(int(sid))
        rows["cid"].append(int(cid))
        rows["product"].append(int(pid))
        rows["cadence"].append(CADENCE.get(plan, 30))
        rows["price"].append(price_now)
        rows["skips"].append(min(int(skips), 1))
        rows["reasons"].append([{"feature": f, "contribution": c} for f, c in reasons])
        rows["hazard"].append(float(hz.get(sid, 0.05)))
        rows["swap"].append([int(swap)] if swap is not None and pd.notna(swap) else [])
        rows["t"].append(t)
    out = dict(rows)
    out["when"] = py_datetimes(pd.Series(rows.get("t", []), dtype="datetime64[ns]"))
    return out


def _by_customer(keys: pd.Series, times: pd.Series) -> dict[int, np.ndarray]:
    frame = pd.DataFrame({"k": keys.to_numpy(), "t": times.to_numpy()}).dropna()
    return {int(k): np.sort(g["t"].to_numpy()) for k, g in frame.groupby("k")}


def _count(times: np.ndarray | None, lo, hi) -> int:
    if times is None:
        return 0
    a = np.searchsorted(times, np.datetime64(lo), side="left")
    b = np.searchsorted(times, np.datetime64(hi), side="left")
    return int(b - a)


def replay_cancel(r, a: dict, j: int, now: datetime, assume: SaveAssumptions) -> None:
    """Offer the policy's save offer to cancellation ``j`` and tally the expected outcome."""
    tally: SaveTally = r.saves
    tally.cancels += 1
    cid = a["cid"][j]
    sub = Subscription(
        subscription_id=a["sid"][j],
        customer_id=cid,
        product_id=a["product"][j],
        status="active",
        cadence_days=a["cadence"][j],
        price=a["price"][j],
        next_delivery_at=now + timedelta(days=7),
        consecutive_skips=a["skips"][j],
    )
    risk = r.scores.churn(cid, now)
    choice = choose_save_offer(sub, risk, a["reasons"][j], None, now, r.policy, a["swap"][j])
    offer = choice.offer
    if offer is None:
        r.outcomes[("cancel", "no offer")] += 1
        return
    tally.offers += 1
    tally.by_kind[offer.kind] += 1
    r.outcomes[("cancel", f"offer: {offer.kind}")] += 1
    groups = {_GROUP.get(x["feature"]) for x in a["reasons"][j]}
    fit = 1.0 if FIT[offer.kind] & groups else assume.mismatch
    true_risk = r.scores.sub_risk.get((cid, now.year * 12 + now.month - 1), risk)
    p = min(1.0, assume.accept_base * fit * (1.0 - true_risk))
    cadence = int(offer.terms.get("cadence_days", sub.cadence_days))
    monthly = sub.price * 30.0 / cadence
    h = min(max(a["hazard"][j], 1e-4), 0.9999)
    survival = sum((1 - h) ** m for m in range(assume.horizon_months))
    given_up = offer.cost + offer.deferred_revenue
    tally.accepted += p
    tally.cost += p * offer.cost
    tally.saved_revenue += p * (monthly * survival - given_up)


#: Stand-in reason feature -> the group the default policy maps it to.
_GROUP = {
    "late_2m": "delivery",
    "claims_3m": "delivery",
    "low_reviews_3m": "product",
    "price_increase_2m": "price",
    "skips_1m": "too_much_product",
    "tenure_under_90d": "other",
}


SAVE_NOTE = (
    "Save offers: each of the world's cancellations first meets the policy's offer; "
    "P(accept) = {base} x fit (1, or {mismatch} when the offer answers none of the "
    "subscriber's true drivers) x (1 - true 90-day churn risk); saved revenue = expected "
    "revenue over {months} months under the subscriber's true hazard, minus what the "
    "offer gives up; figures are expectations."
)


def save_metrics(t: SaveTally) -> dict:
    """The summary rows of one policy's save offers."""
    return {
        "cancellation requests": t.cancels,
        "save offers made": t.offers,
        "save offers accepted (expected)": round(t.accepted, 1),
        "save offer acceptance rate": round(t.accepted / t.offers, 4) if t.offers else 0.0,
        "saved revenue (expected)": round(t.saved_revenue, 2),
        "save offer cost (accepted, expected)": round(t.cost, 2),
    }
