"""Churn features as of a snapshot time, and the labels that follow it.

Every feature is computed from events strictly before ``as_of``: the same pure function
builds one customer's features at request time and a million rows offline, and a test
plants a future event to prove nothing after the snapshot leaks in.

Windows are counted in calendar months because that is how a subscription business
(and the synthetic world's hazard) thinks about "recent" experience: the window
``last k months`` is ``[first day of as_of's month - k months, as_of)``. At a month-start
snapshot that is exactly the k previous calendar months; mid-month it also includes the
days of the current month already seen.

The features cover what the brief names as churn drivers: tenure, plan and price
changes, skips and pauses, delivery experience (late deliveries, claims, returns, review
scores), loyalty engagement (points earned and redeemed, tier), message engagement
(opens and clicks, a window on latent engagement) and support contacts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ppx.data import columns as C

#: Label horizons in days (P(churn within d days)).
HORIZONS: tuple[int, ...] = (30, 60, 90)
AS_OF = "as_of"
#: Columns that identify a row rather than describe it.
KEY_COLUMNS: tuple[str, ...] = (C.SUBSCRIPTION_ID, C.CUSTOMER_ID, AS_OF)
#: Categorical features (strings); everything else in FEATURE_COLUMNS is numeric.
CATEGORICAL_FEATURES: tuple[str, ...] = ("plan", "tier", "region")
NUMERIC_FEATURES: tuple[str, ...] = (
    "tenure_days",
    "tenure_under_90d",
    "customer_age_days",
    "price_now",
    "price_change_ratio",
    "price_increase_2m",
    "n_price_changes",
    "renewals_total",
    "skips_1m",
    "paused_1m",
    "paused_now",
    "skips_3m",
    "skips_total",
    "pauses_total",
    "deliveries_2m",
    "late_1m",
    "late_2m",
    "late_2m_capped",
    "late_6m",
    "late_total",
    "late_rate",
    "claims_3m",
    "any_claim_3m",
    "claims_total",
    "returns_3m",
    "returns_total",
    "reviews_total",
    "mean_rating",
    "low_reviews_3m",
    "any_low_review_3m",
    "orders_3m",
    "order_value_3m",
    "days_since_last_order",
    "points_balance",
    "points_earned_3m",
    "redeems_3m",
    "any_redeem_3m",
    "redeems_total",
    "messages_out_total",
    "opens_total",
    "clicks_total",
    "open_rate",
    "click_rate",
    "messages_out_3m",
    "open_rate_3m",
    "support_contacts_3m",
    "support_contacts_total",
    "email_opt_in",
    "sms_opt_in",
    "push_opt_in",
    "referred",
)
FEATURE_COLUMNS: tuple[str, ...] = NUMERIC_FEATURES + CATEGORICAL_FEATURES
#: Lifetime totals grow with the calendar (a customer seen for two years has more of
#: everything), so a model trained on early months sees them drift at serving time. On
#: the default world's validation months they cost ROC AUC (0.653 with them, 0.659
#: without, logistic regression), so the models use windows, rates and flags instead;
#: the totals stay in the frame for reports and for the rules layer.
DRIFTING_FEATURES: tuple[str, ...] = (
    "customer_age_days",
    "tenure_days",
    "renewals_total",
    "skips_total",
    "pauses_total",
    "late_total",
    "claims_total",
    "returns_total",
    "reviews_total",
    "redeems_total",
    "messages_out_total",
    "opens_total",
    "clicks_total",
    "points_balance",
    "support_contacts_total",
    "n_price_changes",
    "price_change_ratio",
)
MODEL_NUMERIC_FEATURES: tuple[str, ...] = tuple(
    c for c in NUMERIC_FEATURES if c not in DRIFTING_FEATURES
)

#: The compact history tables churn features need (``history_tables`` output).
HISTORY_TABLES: tuple[str, ...] = (
    "subs",
    "sub_events",
    "deliveries",
    "claims",
    "returns",
    "reviews",
    "loyalty",
    "messages",
    "customers",
)


def history_tables(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Canonical tables -> the compact event history the churn features read.

    Why: the served model carries this history as an artifact, so it should hold only
    the columns the features use (a late flag instead of the whole shipments table).
    Idempotent: a dict that already is a history is returned unchanged.
    """
    if set(HISTORY_TABLES) <= set(tables):
        return tables
    need = (
        C.CUSTOMERS,
        C.ORDERS,
        C.SHIPMENTS,
        C.SUBSCRIPTIONS,
        C.SUBSCRIPTION_EVENTS,
        C.CLAIMS,
        C.RETURNS,
        C.REVIEWS,
        C.LOYALTY_EVENTS,
        C.MESSAGES,
    )
    missing = [t for t in need if t not in tables]
    if missing:
        raise ValueError(
            f"churn features need the canonical tables {missing}; got {sorted(tables)}"
        )
    o = tables[C.ORDERS][[C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT, C.PROMISED_DATE, C.ORDER_VALUE]]
    s = tables[C.SHIPMENTS][[C.ORDER_ID, C.DELIVERED_AT]]
    d = o.merge(s, on=C.ORDER_ID, how="left")
    late = d[C.DELIVERED_AT].notna() & (
        d[C.DELIVERED_AT].dt.normalize() > d[C.PROMISED_DATE].dt.normalize()
    )
    deliveries = pd.DataFrame(
        {
            C.CUSTOMER_ID: d[C.CUSTOMER_ID].to_numpy(),
            C.ORDERED_AT: d[C.ORDERED_AT].to_numpy(),
            C.DELIVERED_AT: d[C.DELIVERED_AT].to_numpy(),
            C.ORDER_VALUE: d[C.ORDER_VALUE].to_numpy(dtype=float),
            "late": late.to_numpy(dtype=bool),
        }
    )
    cust = tables[C.CUSTOMERS]
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust[C.CUSTOMER_ID].to_numpy(),
            C.SIGNUP_AT: cust[C.SIGNUP_AT].to_numpy(),
            C.REGION: cust[C.REGION].astype(str).to_numpy(),
            C.EMAIL_OPT_IN: cust[C.EMAIL_OPT_IN].to_numpy(dtype=bool),
            C.SMS_OPT_IN: cust[C.SMS_OPT_IN].to_numpy(dtype=bool),
            C.PUSH_OPT_IN: cust[C.PUSH_OPT_IN].to_numpy(dtype=bool),
            "referred": cust[C.REFERRED_BY].notna().to_numpy(),
        }
    )
    subs = tables[C.SUBSCRIPTIONS][
        [C.SUBSCRIPTION_ID, C.CUSTOMER_ID, C.PLAN, C.PRICE, C.STARTED_AT, C.CANCELLED_AT]
    ]
    ev = tables[C.SUBSCRIPTION_EVENTS][
        [C.SUBSCRIPTION_ID, C.EVENT_AT, C.EVENT_TYPE, C.OLD_VALUE, C.NEW_VALUE]
    ]
    return {
        "subs": subs.reset_index(drop=True),
        "sub_events": ev.reset_index(drop=True),
        "deliveries": deliveries,
        "claims": tables[C.CLAIMS][[C.CUSTOMER_ID, C.CLAIMED_AT]].reset_index(drop=True),
        "returns": tables[C.RETURNS][[C.CUSTOMER_ID, C.REQUESTED_AT]].reset_index(drop=True),
        "reviews": tables[C.REVIEWS][[C.CUSTOMER_ID, C.CREATED_AT, C.RATING]].reset_index(
            drop=True
        ),
        "loyalty": tables[C.LOYALTY_EVENTS][
            [C.CUSTOMER_ID, C.EVENT_AT, C.EVENT_TYPE, C.POINTS, C.TIER]
        ].reset_index(drop=True),
        "messages": tables[C.MESSAGES][
            [C.CUSTOMER_ID, C.SENT_AT, C.DIRECTION, C.MESSAGE_TYPE, C.OPENED, C.CLICKED]
        ].reset_index(drop=True),
        "customers": customers,
    }


def restrict_history(history: dict[str, pd.DataFrame], customer_ids) -> dict[str, pd.DataFrame]:
    """The history of a few customers only (what one online request needs).

    With a :class:`ChurnHistoryIndex` (``index_history``) each table is sliced by row
    positions instead of scanned, so one request costs microseconds, not a pass over
    every event; the rows and their order are the same either way.
    """
    ids = pd.Index(np.asarray(customer_ids))
    index = history.get(_INDEX_KEY) if isinstance(history, dict) else None
    if index is not None:
        return index.restrict(history, ids)
    subs = history["subs"][history["subs"][C.CUSTOMER_ID].isin(ids)]
    out = {}
    for name, df in history.items():
        if name == "sub_events":
            out[name] = df[df[C.SUBSCRIPTION_ID].isin(subs[C.SUBSCRIPTION_ID])]
        else:
            out[name] = df[df[C.CUSTOMER_ID].isin(ids)]
    return out


_INDEX_KEY = "__index__"


class ChurnHistoryIndex:
    """Row positions of each customer in each history table (built once at load)."""

    def __init__(self, history: dict[str, pd.DataFrame]):
        self.rows: dict[str, dict[int, np.ndarray]] = {}
        subs = history["subs"]
        sub_owner = pd.Series(
            subs[C.CUSTOMER_ID].to_numpy(), index=subs[C.SUBSCRIPTION_ID].to_numpy()
        )
        for name in HISTORY_TABLES:
            df = history[name]
            if name == "sub_events":
                owner = sub_owner.reindex(df[C.SUBSCRIPTION_ID].to_numpy()).to_numpy()
            else:
                owner = df[C.CUSTOMER_ID].to_numpy()
            groups = pd.Series(np.arange(len(df))).groupby(owner, sort=False).indices
            self.rows[name] = {int(k): np.asarray(v) for k, v in groups.items()}

    def restrict(self, history: dict[str, pd.DataFrame], ids: pd.Index) -> dict:
        out = {}
        empty = np.zeros(0, dtype=np.int64)
        for name in HISTORY_TABLES:
            parts = [self.rows[name].get(int(i), empty) for i in ids]
            if len(parts) == 1:
                pos = parts[0]
            else:
                pos = np.sort(np.concatenate(parts)) if parts else empty
            out[name] = history[name].iloc[pos]
        return out


def index_history(history: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """The same history with a per-customer row index for fast ``restrict_history``."""
    h = {k: v for k, v in history.items() if k != _INDEX_KEY}
    h[_INDEX_KEY] = ChurnHistoryIndex(h)
    return h


#: Month-start snapshots the served model precomputes (the data end and the months
#: before it): a request for one of them is a lookup instead of a computation.
SERVING_SNAPSHOT_MONTHS = 6


def serving_snapshot(
    history: dict[str, pd.DataFrame], months: int = SERVING_SNAPSHOT_MONTHS
) -> pd.DataFrame:
    """:func:`churn_features` of every active subscription at the last ``months`` month
    starts up to :func:`data_end` (the served model's default ``as_of``).

    Written with the model at training time. It is the offline feature function's own
    output, so looking a row up gives exactly what computing it per request gives
    (tests check this); only requests at other times compute features online.
    """
    h = {k: v for k, v in history.items() if k != _INDEX_KEY}
    end = data_end(h)
    times = [end - pd.DateOffset(months=k) for k in range(months - 1, -1, -1)]
    parts = [churn_features(h, t) for t in times]
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def month_start(ts: pd.Timestamp) -> pd.Timestamp:
    """First instant of the calendar month that ``ts`` falls in."""
    ts = pd.Timestamp(ts)
    return pd.Timestamp(year=ts.year, month=ts.month, day=1)


def _count(
    df: pd.DataFrame,
    time_col: str,
    lo: pd.Timestamp | None,
    hi: pd.Timestamp,
    ids: pd.Index,
    mask: np.ndarray | pd.Series | None = None,
    key: str = C.CUSTOMER_ID,
    weights: str | None = None,
) -> np.ndarray:
    """Count (or sum ``weights``) of events with ``lo <= time < hi`` per id in ``ids``.

    Plain numpy (positions of the keys in ``ids``, then ``bincount``) rather than a
    pandas groupby: the results are the same (missing times never count, missing
    weights add nothing), and a single customer's online request, which calls this
    some thirty times, no longer pays pandas' fixed cost per groupby and reindex.
    ``ids`` must be unique.
    """
    t = df[time_col].to_numpy()
    sel = t < pd.Timestamp(hi).to_datetime64()
    if lo is not None:
        sel &= t >= pd.Timestamp(lo).to_datetime64()
    if mask is not None:
        sel &= np.asarray(mask, dtype=bool)
    pos = ids.get_indexer(df[key].to_numpy()[sel])
    ok = pos >= 0
    w = None
    if weights is not None:
        w = np.nan_to_num(df[weights].to_numpy(dtype=float)[sel][ok])
    return np.bincount(pos[ok], weights=w, minlength=len(ids)).astype(float)


def churn_features(
    tables: dict[str, pd.DataFrame],
    as_of,
    subscription_ids: Iterable[int] | None = None,
) -> pd.DataFrame:
    """Features of every subscription active at ``as_of``, from events before it.

    Args:
        tables: canonical tables or the output of :func:`history_tables`.
        as_of: the snapshot time; only events strictly before it are read.
        subscription_ids: optionally restrict to these subscriptions.

    Returns:
        One row per active subscription: ``subscription_id``, ``customer_id``, ``as_of``
        and :data:`FEATURE_COLUMNS`.
    """
    h = history_tables(tables)
    as_of = pd.Timestamp(as_of)
    ms = month_start(as_of)
    w1, w2, w3, w6 = (ms - pd.DateOffset(months=k) for k in (1, 2, 3, 6))

    subs = h["subs"]
    active = (subs[C.STARTED_AT] < as_of) & ~(subs[C.CANCELLED_AT] < as_of)
    if subscription_ids is not None:
        active &= subs[C.SUBSCRIPTION_ID].isin(list(subscription_ids))
    subs = subs.loc[active.to_numpy(dtype=bool)].sort_values(C.SUBSCRIPTION_ID)
    sids = pd.Index(subs[C.SUBSCRIPTION_ID].to_numpy(), name=C.SUBSCRIPTION_ID)
    cids = pd.Index(subs[C.CUSTOMER_ID].to_numpy(), name=C.CUSTOMER_ID)
    keys = {
        C.SUBSCRIPTION_ID: sids.to_numpy(),
        C.CUSTOMER_ID: cids.to_numpy(),
        AS_OF: np.full(len(subs), as_of.to_datetime64()).astype("datetime64[ns]"),
    }
    if len(subs) == 0:
        out = pd.DataFrame(keys)
        for col in NUMERIC_FEATURES:
            out[col] = pd.Series([], dtype=float)
        for col in CATEGORICAL_FEATURES:
            out[col] = pd.Series([], dtype="str")
        return out
    # Columns are collected in a dict and framed once at the end: inserting ~50
    # columns one by one into a DataFrame costs more than the features themselves
    # when an online request computes one customer's row.
    out: dict[str, np.ndarray] = dict(keys)
    # Per-customer counters are computed once per distinct customer, then broadcast.
    ucids = pd.Index(np.unique(cids.to_numpy()), name=C.CUSTOMER_ID)

    cpos = ucids.get_indexer(cids)  # every subscription's customer, as a position

    def per_cust(values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=float)[cpos]

    # --- subscription: tenure, plan, price, skips, pauses -----------------------------
    tenure = (as_of - subs[C.STARTED_AT]).dt.total_seconds().to_numpy() / 86_400
    out["tenure_days"] = tenure
    out["tenure_under_90d"] = (tenure < 90).astype(float)
    out["plan"] = subs[C.PLAN].astype(str).to_numpy()
    ev = h["sub_events"]
    ev = ev.loc[(ev[C.EVENT_AT] < as_of).to_numpy(dtype=bool) & ev[C.SUBSCRIPTION_ID].isin(sids)]
    et = ev[C.EVENT_TYPE].astype(str)
    pc = ev.loc[(et == "price_change").to_numpy()].sort_values(C.EVENT_AT, kind="stable")
    last_price = pc.groupby(C.SUBSCRIPTION_ID)[C.NEW_VALUE].last().reindex(sids)
    start_price = subs[C.PRICE].to_numpy(dtype=float)
    price_now = np.where(last_price.isna(), start_price, last_price.to_numpy(dtype=float))
    out["price_now"] = price_now
    out["price_change_ratio"] = price_now / np.maximum(start_price, 1e-6)
    up = (pc[C.NEW_VALUE] > pc[C.OLD_VALUE]).to_numpy()
    out["price_increase_2m"] = (
        _count(pc, C.EVENT_AT, w2, as_of, sids, mask=up, key=C.SUBSCRIPTION_ID) > 0
    ).astype(float)
    out["n_price_changes"] = _count(pc, C.EVENT_AT, None, as_of, sids, key=C.SUBSCRIPTION_ID)
    is_skip = (et == "skip").to_numpy()
    out["renewals_total"] = _count(
        ev, C.EVENT_AT, None, as_of, sids, mask=(et == "renew").to_numpy(), key=C.SUBSCRIPTION_ID
    )
    out["skips_1m"] = _count(ev, C.EVENT_AT, w1, as_of, sids, mask=is_skip, key=C.SUBSCRIPTION_ID)
    out["skips_3m"] = _count(ev, C.EVENT_AT, w3, as_of, sids, mask=is_skip, key=C.SUBSCRIPTION_ID)
    out["skips_total"] = _count(
        ev, C.EVENT_AT, None, as_of, sids, mask=is_skip, key=C.SUBSCRIPTION_ID
    )
    pauses = ev.loc[(et == "pause").to_numpy()]
    resumes = ev.loc[(et == "resume").to_numpy()]
    out["pauses_total"] = _count(pauses, C.EVENT_AT, None, as_of, sids, key=C.SUBSCRIPTION_ID)
    # Paused at some point of the last calendar month: a pause began before as_of and no
    # resume was seen before the window opened (a resume after as_of is not yet known).
    last_pause = pauses.groupby(C.SUBSCRIPTION_ID)[C.EVENT_AT].max().reindex(sids)
    last_resume = resumes.groupby(C.SUBSCRIPTION_ID)[C.EVENT_AT].max().reindex(sids)
    has_pause = last_pause.notna().to_numpy()
    resumed_after = (last_resume > last_pause).to_numpy(dtype=bool)
    resume_t = last_resume.to_numpy()
    paused_now = has_pause & ~resumed_after
    paused_in_w1 = has_pause & (
        ~resumed_after | (np.where(resumed_after, resume_t, np.datetime64("NaT")) >= w1)
    )
    out["paused_now"] = paused_now.astype(float)
    out["paused_1m"] = paused_in_w1.astype(float)

    # --- customer profile ---------------------------------------------------------------
    cu = h["customers"].set_index(C.CUSTOMER_ID).reindex(cids)
    out["customer_age_days"] = (as_of - cu[C.SIGNUP_AT]).dt.total_seconds().to_numpy(
        dtype=float
    ) / 86_400
    out["region"] = cu[C.REGION].astype(str).to_numpy()
    for col in (C.EMAIL_OPT_IN, C.SMS_OPT_IN, C.PUSH_OPT_IN, "referred"):
        out[col] = cu[col].to_numpy(dtype=float)

    # --- delivery experience ------------------------------------------------------------
    d = h["deliveries"]
    delivered = d.loc[d[C.DELIVERED_AT].notna().to_numpy()]
    late = delivered["late"].to_numpy(dtype=bool)
    n_del_2m = _count(delivered, C.DELIVERED_AT, w2, as_of, ucids)
    late_1m = _count(delivered, C.DELIVERED_AT, w1, as_of, ucids, mask=late)
    late_2m = _count(delivered, C.DELIVERED_AT, w2, as_of, ucids, mask=late)
    late_6m = _count(delivered, C.DELIVERED_AT, w6, as_of, ucids, mask=late)
    late_all = _count(delivered, C.DELIVERED_AT, None, as_of, ucids, mask=late)
    n_del_all = _count(delivered, C.DELIVERED_AT, None, as_of, ucids)
    out["deliveries_2m"] = per_cust(n_del_2m)
    out["late_1m"] = per_cust(late_1m)
    out["late_2m"] = per_cust(late_2m)
    out["late_2m_capped"] = np.minimum(out["late_2m"], 3.0)
    out["late_6m"] = per_cust(late_6m)
    out["late_total"] = per_cust(late_all)
    out["late_rate"] = per_cust((late_all + 0.1) / (n_del_all + 1.0))
    out["claims_3m"] = per_cust(_count(h["claims"], C.CLAIMED_AT, w3, as_of, ucids))
    out["any_claim_3m"] = (out["claims_3m"] > 0).astype(float)
    out["claims_total"] = per_cust(_count(h["claims"], C.CLAIMED_AT, None, as_of, ucids))
    out["returns_3m"] = per_cust(_count(h["returns"], C.REQUESTED_AT, w3, as_of, ucids))
    out["returns_total"] = per_cust(_count(h["returns"], C.REQUESTED_AT, None, as_of, ucids))
    rv = h["reviews"]
    low = (rv[C.RATING] <= 2).to_numpy()
    n_rev = _count(rv, C.CREATED_AT, None, as_of, ucids)
    sum_rev = _count(rv, C.CREATED_AT, None, as_of, ucids, weights=C.RATING)
    out["reviews_total"] = per_cust(n_rev)
    # Shrunk toward a neutral 4 stars so one review does not look like a trend.
    out["mean_rating"] = per_cust((sum_rev + 4.0 * 2) / (n_rev + 2))
    out["low_reviews_3m"] = per_cust(_count(rv, C.CREATED_AT, w3, as_of, ucids, mask=low))
    out["any_low_review_3m"] = (out["low_reviews_3m"] > 0).astype(float)
    out["orders_3m"] = per_cust(_count(d, C.ORDERED_AT, w3, as_of, ucids))
    out["order_value_3m"] = per_cust(
        _count(d, C.ORDERED_AT, w3, as_of, ucids, weights=C.ORDER_VALUE)
    )
    seen = d.loc[(d[C.ORDERED_AT] < as_of).to_numpy(dtype=bool)]
    last_order = seen.groupby(C.CUSTOMER_ID)[C.ORDERED_AT].max().reindex(ucids)
    since = (as_of - last_order).dt.total_seconds().to_numpy(dtype=float) / 86_400
    out["days_since_last_order"] = per_cust(np.where(np.isnan(since), 3650.0, since))

    # --- loyalty --------------------------------------------------------------------------
    lo = h["loyalty"]
    lt = lo[C.EVENT_TYPE].astype(str)
    is_red = (lt == "redeem").to_numpy()
    earn = lt.isin(["earn", "referral_bonus", "review_bonus"]).to_numpy()
    out["points_balance"] = per_cust(_count(lo, C.EVENT_AT, None, as_of, ucids, weights=C.POINTS))
    out["points_earned_3m"] = per_cust(
        _count(lo, C.EVENT_AT, w3, as_of, ucids, mask=earn, weights=C.POINTS)
    )
    out["redeems_3m"] = per_cust(_count(lo, C.EVENT_AT, w3, as_of, ucids, mask=is_red))
    out["any_redeem_3m"] = (out["redeems_3m"] > 0).astype(float)
    out["redeems_total"] = per_cust(_count(lo, C.EVENT_AT, None, as_of, ucids, mask=is_red))
    tiers = lo.loc[(lt == "tier_change").to_numpy() & (lo[C.EVENT_AT] < as_of).to_numpy(bool)]
    tiers = tiers.sort_values(C.EVENT_AT, kind="stable")
    tier = tiers.groupby(C.CUSTOMER_ID)[C.TIER].last().reindex(ucids)
    tier = tier.astype(object).where(tier.notna(), C.TIERS[0])
    out["tier"] = pd.Series(tier.to_numpy(), index=ucids).reindex(cids).astype(str).to_numpy()

    # --- messages: engagement and support contacts -----------------------------------------
    mg = h["messages"]
    outbound = (mg[C.DIRECTION].astype(str) == "outbound").to_numpy()
    opened = outbound & mg[C.OPENED].to_numpy(dtype=bool)
    clicked = outbound & mg[C.CLICKED].to_numpy(dtype=bool)
    support = (mg[C.DIRECTION].astype(str) == "inbound").to_numpy() | (
        mg[C.MESSAGE_TYPE].astype(str) == "support_contact"
    ).to_numpy()
    n_out = _count(mg, C.SENT_AT, None, as_of, ucids, mask=outbound)
    n_open = _count(mg, C.SENT_AT, None, as_of, ucids, mask=opened)
    n_click = _count(mg, C.SENT_AT, None, as_of, ucids, mask=clicked)
    n_out3 = _count(mg, C.SENT_AT, w3, as_of, ucids, mask=outbound)
    n_open3 = _count(mg, C.SENT_AT, w3, as_of, ucids, mask=opened)
    out["messages_out_total"] = per_cust(n_out)
    out["opens_total"] = per_cust(n_open)
    out["clicks_total"] = per_cust(n_click)
    # Beta-smoothed rates: a customer with two messages should not look perfectly engaged.
    out["open_rate"] = per_cust((n_open + 1.0) / (n_out + 2.5))
    out["click_rate"] = per_cust((n_click + 0.3) / (n_open + 1.5))
    out["messages_out_3m"] = per_cust(n_out3)
    out["open_rate_3m"] = per_cust((n_open3 + 1.0) / (n_out3 + 2.5))
    out["support_contacts_3m"] = per_cust(_count(mg, C.SENT_AT, w3, as_of, ucids, mask=support))
    out["support_contacts_total"] = per_cust(
        _count(mg, C.SENT_AT, None, as_of, ucids, mask=support)
    )
    return pd.DataFrame({c: out[c] for c in (*KEY_COLUMNS, *FEATURE_COLUMNS)})


def data_end(tables: dict[str, pd.DataFrame]) -> pd.Timestamp:
    """The end of observation: the first month start after the last order.

    Why: a world's tables stop at its horizon, but subscription events (resumes) can be
    scheduled beyond it, so the order log is the trustworthy clock.
    """
    h = history_tables(tables)
    last = pd.Timestamp(h["deliveries"][C.ORDERED_AT].max())
    return month_start(last) + pd.DateOffset(months=1)


def churn_labels(
    tables: dict[str, pd.DataFrame],
    frame: pd.DataFrame,
    horizons: Sequence[int] = HORIZONS,
    observed_until=None,
) -> pd.DataFrame:
    """Add ``churn_{d}`` and ``observed_{d}`` for each horizon, plus ``days_to_cancel``.

    Args:
        tables: canonical tables or a history.
        frame: rows with ``subscription_id`` and ``as_of``.
        horizons: label horizons in days.
        observed_until: censoring time (e.g. the start of a later split); defaults to
            :func:`data_end`. A cancellation at or after it is treated as unseen.

    Returns:
        A copy of ``frame`` with the label columns. ``observed_{d}`` is 1 when the
        outcome within d days is known: either a cancellation was seen inside the window
        or the whole window lies before ``observed_until``.
    """
    h = history_tables(tables)
    end = pd.Timestamp(observed_until) if observed_until is not None else data_end(h)
    cancel = h["subs"].set_index(C.SUBSCRIPTION_ID)[C.CANCELLED_AT]
    c = cancel.reindex(frame[C.SUBSCRIPTION_ID].to_numpy()).to_numpy()
    c = np.where(c < np.datetime64(end), c, np.datetime64("NaT"))
    as_of = frame[AS_OF].to_numpy().astype("datetime64[ns]")
    days = (c - as_of) / np.timedelta64(1, "D")
    out = frame.copy()
    out["days_to_cancel"] = days
    for d in horizons:
        hit = days < d
        window_end = as_of + np.timedelta64(int(d), "D")
        out[f"churn_{d}"] = hit.astype(float)
        out[f"observed_{d}"] = (hit | (window_end <= np.datetime64(end))).astype(float)
    return out


def month_snapshots(tables: dict[str, pd.DataFrame], first=None, last=None) -> list[pd.Timestamp]:
    """Month-start snapshot dates from the first subscription to the data end."""
    h = history_tables(tables)
    lo = month_start(h["subs"][C.STARTED_AT].min()) + pd.DateOffset(months=1)
    hi = data_end(h) - pd.DateOffset(months=1)
    lo = max(lo, pd.Timestamp(first)) if first is not None else lo
    hi = min(hi, pd.Timestamp(last)) if last is not None else hi
    return list(pd.date_range(lo, hi, freq="MS"))


def build_churn_frame(
    tables: dict[str, pd.DataFrame],
    snapshots: Sequence,
    horizons: Sequence[int] = HORIZONS,
    observed_until=None,
    progress: bool = False,
) -> pd.DataFrame:
    """Features and labels for every active subscription at every snapshot.

    Args:
        tables: canonical tables or a history.
        snapshots: snapshot times (usually month starts).
        horizons: label horizons in days.
        observed_until: censoring time for the labels (see :func:`churn_labels`).
        progress: show a progress bar over the snapshots.
    """
    h = history_tables(tables)
    it = list(snapshots)
    if progress:
        from tqdm.auto import tqdm

        it = tqdm(it, desc="churn snapshots", leave=False)
    parts = [churn_features(h, t) for t in it]
    parts = [p for p in parts if len(p)]
    if not parts:
        raise ValueError("no active subscriptions at any snapshot; nothing to learn from")
    frame = pd.concat(parts, ignore_index=True)
    return churn_labels(h, frame, horizons, observed_until=observed_until)
