"""The replay's inputs as plain arrays, and the merged, time-ordered event stream."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.policy import Policy
from ppx.rules.simulator.daily import daily_candidates
from ppx.rules.simulator.inputs import WorldEvents, py_datetimes
from ppx.rules.simulator.referrals import referral_rows
from ppx.rules.simulator.saves import cancel_requests
from ppx.rules.simulator.scores import StandInScores

# Event kinds in processing order when two share a timestamp.
KINDS = (
    "placed",
    "shipped",
    "delivered",
    "lost",
    "referral",
    "review",
    "return",
    "claim",
    "daily",
    "cancel",
)
DAILY_HOUR = 10


def _request_columns(
    frame: pd.DataFrame, id_col: str, amount_col: str, truth: pd.DataFrame
) -> dict:
    """Columns every return and claim replays with, named as the request's fields.

    ``confirmed`` (the brand's label) and ``fraud`` (the world's truth) are not fields.
    """
    return {
        "order_id": frame[C.ORDER_ID].tolist(),
        "customer_id": frame[C.CUSTOMER_ID].tolist(),
        "amount": frame[amount_col].astype(float).tolist(),
        "confirmed": frame[C.CONFIRMED_FRAUD].astype(bool).tolist(),
        "fraud": truth.set_index(id_col)[C.IS_FRAUD]
        .reindex(frame[id_col])
        .fillna(False)
        .astype(bool)
        .tolist(),
    }


def event_arrays(
    ev: WorldEvents,
    truth,
    scores: StandInScores,
    policies: list[Policy],
    cfg,
    everyone: pd.DataFrame | None = None,
):
    """The replay's arrays and stream; ``everyone``: the world's whole customers table
    (the referral linkage check), None to skip that check."""
    o = ev.orders
    succ = truth.get("truth_products")
    first_item = ev.items.sort_values([C.ORDER_ID, C.LINE_NO]).drop_duplicates(C.ORDER_ID)
    first_item = first_item.set_index(C.ORDER_ID)[C.PRODUCT_ID].reindex(o[C.ORDER_ID])
    if succ is not None:
        nxt = succ.set_index(C.PRODUCT_ID)["successor_id"].reindex(first_item.to_numpy())
        recs = [[int(x)] if pd.notna(x) else [] for x in nxt.to_numpy()]
    else:
        recs = [[] for _ in range(len(o))]
    promised = pd.to_datetime(o[C.PROMISED_DATE]).dt.date.to_numpy()
    arrays = {
        "orders": {
            "oid": o[C.ORDER_ID].to_numpy().tolist(),
            "cid": o[C.CUSTOMER_ID].to_numpy().tolist(),
            "ordered": py_datetimes(o[C.ORDERED_AT]),
            "delivered": py_datetimes(o[C.DELIVERED_AT]),
            "promised": promised,
            "value": o[C.ORDER_VALUE].astype(float).to_numpy().tolist(),
            "recs": recs,
        }
    }
    dmap = o.set_index(C.ORDER_ID)[C.DELIVERED_AT]
    rt = ev.returns
    arrays["returns"] = {
        "return_id": rt[C.RETURN_ID].tolist(),
        **_request_columns(rt, C.RETURN_ID, C.REFUND_AMOUNT, truth[C.TRUTH_RETURNS]),
        "reason": rt[C.REASON].astype(str).tolist(),
        "delivered_at": py_datetimes(dmap.reindex(rt[C.ORDER_ID])),
    }
    cl = ev.claims
    smap = o.set_index(C.ORDER_ID)
    arrays["claims"] = {
        "claim_id": cl[C.CLAIM_ID].tolist(),
        **_request_columns(cl, C.CLAIM_ID, C.AMOUNT, truth[C.TRUTH_CLAIMS]),
        "claim_type": cl[C.CLAIM_TYPE].astype(str).tolist(),
        "carrier_status": smap[C.STATUS].reindex(cl[C.ORDER_ID]).astype(str).tolist(),
        "signature": smap[C.SIGNATURE].reindex(cl[C.ORDER_ID]).fillna(False).astype(bool).tolist(),
    }
    rv = ev.reviews
    arrays["reviews"] = {
        "rid": rv[C.REVIEW_ID].tolist(),
        "oid": rv[C.ORDER_ID].tolist(),
        "cid": rv[C.CUSTOMER_ID].tolist(),
        "rating": rv[C.RATING].tolist(),
        # a written review earns more than a star-only rating (review.text_points)
        "has_text": (
            rv[C.REVIEW_BODY].fillna("").astype(str).str.strip().str.len() > 0
            if C.REVIEW_BODY in rv.columns
            else pd.Series(False, index=rv.index)
        ).tolist(),
    }
    cu = ev.customers
    birth = pd.to_datetime(cu[C.BIRTH_DATE])
    arrays["contacts"] = {
        int(c): (s, (b.date() if pd.notna(b) else None), bool(e), bool(sm), bool(pu))
        for c, s, b, e, sm, pu in zip(
            cu[C.CUSTOMER_ID].tolist(),
            py_datetimes(cu[C.SIGNUP_AT]),
            birth,
            cu[C.EMAIL_OPT_IN].tolist(),
            cu[C.SMS_OPT_IN].tolist(),
            cu[C.PUSH_OPT_IN].tolist(),
            strict=True,
        )
    }
    subs: dict[int, list] = defaultdict(list)
    for c, a, b in zip(
        ev.subs[C.CUSTOMER_ID].tolist(),
        py_datetimes(ev.subs[C.STARTED_AT]),
        py_datetimes(ev.subs[C.CANCELLED_AT]),
        strict=True,
    ):
        subs[int(c)].append((a, b))
    arrays["subs"] = dict(subs)
    cand, due = daily_candidates(ev, policies, cfg)
    arrays["daily"] = list(zip(cand["c"].tolist(), cand["day"].dt.date.tolist(), strict=True))
    dd: dict = defaultdict(list)
    for c, pid, when, day in zip(
        due[C.CUSTOMER_ID].tolist(),
        due[C.PRODUCT_ID].tolist(),
        py_datetimes(due["due"]),
        due["day"].dt.date.tolist(),
        strict=True,
    ):
        dd[(c, day)].append((pid, when))
    arrays["due"] = dict(dd)
    # Referrals: attributed on a referred customer's first delivered order (see referrals).
    arrays["referrals"] = referral_rows(cu, o, everyone)
    # Cancellations meet the policy's save offer (needs the world's truth: see saves). A
    # store's model scores stand in for the monthly risks but mark no churned month (the
    # drivers and hazards of a cancellation are the generator's): no save offers there.
    if (
        ev.sub_events is not None
        and "truth_subscription_months" in truth
        and C.CHURNED in truth["truth_subscription_months"].columns
        and hasattr(scores, "sub_risk")
    ):
        arrays["cancels"] = cancel_requests(ev, truth, ev.sub_events)
    else:
        arrays["cancels"] = {"when": np.empty(0, dtype=object)}
    # The merged, time-ordered stream.
    parts = []

    def add(kind: str, t: pd.Series, rows: np.ndarray | None = None):
        t = pd.to_datetime(t).reset_index(drop=True)
        rows = np.arange(len(t)) if rows is None else rows
        ok = t.notna().to_numpy()
        parts.append(pd.DataFrame({"t": t[ok].to_numpy(), "k": KINDS.index(kind), "row": rows[ok]}))

    add("placed", o[C.ORDERED_AT])
    add("shipped", o[C.SHIPPED_AT])
    status = o[C.STATUS].astype(str).to_numpy()
    add("delivered", o[C.DELIVERED_AT].where(status == "delivered"))
    lost_at = pd.to_datetime(o[C.PROMISED_DATE]) + pd.Timedelta(days=4)
    add("lost", lost_at.where(status == "lost"))
    add(
        "referral",
        pd.Series([r.delivered_at for r in arrays["referrals"]], dtype="datetime64[ns]")
        + pd.Timedelta(minutes=30),
    )
    add("review", rv[C.CREATED_AT])
    add("return", rt[C.REQUESTED_AT])
    add("claim", cl[C.CLAIMED_AT])
    add("daily", cand["day"] + pd.Timedelta(hours=DAILY_HOUR))
    add("cancel", pd.Series(arrays["cancels"].get("t", []), dtype="datetime64[ns]"))
    stream = pd.concat(parts, ignore_index=True)
    stream = stream[(stream["t"] >= ev.start) & (stream["t"] < ev.end)]
    stream = stream.sort_values(["t", "k", "row"], kind="stable")
    times = py_datetimes(stream["t"])
    return arrays, (stream["k"].to_numpy().tolist(), stream["row"].to_numpy().tolist(), times)
