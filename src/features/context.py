"""The daily pass's customer context, as of a moment, from the canonical tables.

:func:`daily_contexts` turns a store's tables into one row per customer holding what
:class:`ppx.rules.types.CustomerContext` needs for ``decide_daily``: loyalty tier and
points, spend, orders and returns of the last year, subscription, consent, the messages
of the last weeks (caps count them) and the consumables running out. Like every feature
function it is pure and reads only events strictly before ``now``, so one customer's
context (a decision request) and a million rows (the nightly batch) come from the same
code; :func:`context_of` turns a row into the pydantic model the rules take.

Every figure is per customer (no statistic spans customers), so computing it over any
subset of customers - a customer-hash partition of a batch job - gives the same rows as
computing it over the whole store.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ppx.data import columns as C

#: Tables the context reads; everything but products is keyed by customer.
CONTEXT_TABLES: tuple[str, ...] = (
    C.CUSTOMERS,
    C.ORDERS,
    C.ORDER_ITEMS,
    C.PRODUCTS,
    C.SUBSCRIPTIONS,
    C.RETURNS,
    C.CLAIMS,
    C.LOYALTY_EVENTS,
    C.MESSAGES,
)
YEAR = pd.Timedelta(days=365)
#: Messages sent in this window are the customer's recent messages (the week cap's
#: rolling window plus margin).
RECENT_MESSAGE_DAYS = 14
#: A consumable is listed as running out when its expected end falls in
#: [now - DUE_PAST_DAYS, now + DUE_AHEAD_DAYS]; the policy's lead time decides the day.
DUE_PAST_DAYS = 7
DUE_AHEAD_DAYS = 30
MAX_DUE_ITEMS = 200
#: Message types of the world's own history that are not in a policy catalogue.
DEFAULT_CATEGORIES: dict[str, str] = {"promotion": "marketing"}
MESSAGE_CHANNELS = ("email", "sms", "push")


def _before(df: pd.DataFrame, col: str, now: pd.Timestamp) -> pd.DataFrame:
    return df.loc[(df[col] < now).to_numpy(dtype=bool)]


def _per_customer(ids: pd.Index, series: pd.Series, fill) -> np.ndarray:
    return series.reindex(ids).fillna(fill).to_numpy() if len(series) else np.full(len(ids), fill)


def _active_subscription(subs: pd.DataFrame, ids: pd.Index, now: pd.Timestamp) -> pd.Series:
    """The latest active subscription per customer (the one the churn model scores)."""
    live = (subs[C.STARTED_AT] < now) & ~(subs[C.CANCELLED_AT] < now)
    s = subs.loc[live.to_numpy(dtype=bool)]
    return s.groupby(C.CUSTOMER_ID)[C.SUBSCRIPTION_ID].max().reindex(ids)


def _recent_messages(
    messages: pd.DataFrame, now: pd.Timestamp, categories: Mapping[str, str]
) -> dict[int, list[dict]]:
    lo = now - pd.Timedelta(days=RECENT_MESSAGE_DAYS)
    m = messages.loc[
        ((messages[C.SENT_AT] >= lo) & (messages[C.SENT_AT] < now)).to_numpy(dtype=bool)
        & (messages[C.DIRECTION] == "outbound").to_numpy(dtype=bool)
        & messages[C.CHANNEL].isin(MESSAGE_CHANNELS).to_numpy(dtype=bool)
    ].sort_values([C.CUSTOMER_ID, C.SENT_AT], kind="stable")
    out: dict[int, list[dict]] = {}
    for cid, t, mtype, ch in zip(
        m[C.CUSTOMER_ID].to_numpy(),
        m[C.SENT_AT].dt.to_pydatetime(),
        m[C.MESSAGE_TYPE].astype(str).to_numpy(),
        m[C.CHANNEL].astype(str).to_numpy(),
        strict=True,
    ):
        out.setdefault(int(cid), []).append(
            {
                "sent_at": t,
                "message_type": mtype,
                "channel": ch,
                "category": categories.get(mtype, "marketing"),
            }
        )
    return out


def _last_sent(messages: pd.DataFrame, now: pd.Timestamp, mtype: str) -> pd.Series:
    m = _before(messages, C.SENT_AT, now)
    m = m.loc[(m[C.MESSAGE_TYPE] == mtype).to_numpy(dtype=bool)]
    return m.groupby(C.CUSTOMER_ID)[C.SENT_AT].max()


def _running_out(tables: dict[str, pd.DataFrame], now: pd.Timestamp) -> dict[int, list[dict]]:
    """Consumables bought one-off (not as a renewal), not bought again since, not under
    an active subscription to the same product, whose supply ends near ``now``."""
    o = _before(tables[C.ORDERS], C.ORDERED_AT, now)
    o = o.loc[~o[C.IS_RENEWAL].to_numpy(dtype=bool), [C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT]]
    li = tables[C.ORDER_ITEMS][[C.ORDER_ID, C.PRODUCT_ID]].merge(o, on=C.ORDER_ID)
    prod = tables[C.PRODUCTS].set_index(C.PRODUCT_ID)
    consumable = prod[C.IS_CONSUMABLE].reindex(li[C.PRODUCT_ID].to_numpy()).to_numpy()
    li = li.loc[pd.Series(consumable).fillna(False).to_numpy(dtype=bool)]
    last = li.groupby([C.CUSTOMER_ID, C.PRODUCT_ID], as_index=False)[C.ORDERED_AT].max()
    days = prod[C.REPLENISH_DAYS].reindex(last[C.PRODUCT_ID].to_numpy()).to_numpy(dtype=float)
    last["due_at"] = last[C.ORDERED_AT] + pd.to_timedelta(days, unit="D")
    near = (last["due_at"] >= now - pd.Timedelta(days=DUE_PAST_DAYS)) & (
        last["due_at"] <= now + pd.Timedelta(days=DUE_AHEAD_DAYS)
    )
    last = last.loc[near.to_numpy(dtype=bool)]
    subs = tables[C.SUBSCRIPTIONS]
    live = subs.loc[
        ((subs[C.STARTED_AT] < now) & ~(subs[C.CANCELLED_AT] < now)).to_numpy(dtype=bool),
        [C.CUSTOMER_ID, C.PRODUCT_ID],
    ].drop_duplicates()
    last = last.merge(live.assign(_sub=True), on=[C.CUSTOMER_ID, C.PRODUCT_ID], how="left")
    last = last.loc[last["_sub"].isna().to_numpy()]
    last = last.sort_values([C.CUSTOMER_ID, "due_at", C.PRODUCT_ID], kind="stable")
    out: dict[int, list[dict]] = {}
    for cid, pid, due in zip(
        last[C.CUSTOMER_ID].to_numpy(),
        last[C.PRODUCT_ID].to_numpy(),
        last["due_at"].dt.to_pydatetime(),
        strict=True,
    ):
        items = out.setdefault(int(cid), [])
        if len(items) < MAX_DUE_ITEMS:
            items.append({"product_id": int(pid), "due_at": due})
    return out


def daily_contexts(
    tables: dict[str, pd.DataFrame],
    now,
    customer_ids=None,
    categories: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """One row per customer: the :class:`CustomerContext` fields as of ``now``.

    Args:
        tables: canonical tables (:data:`CONTEXT_TABLES`), whole or one partition.
        now: the decision moment; only events strictly before it are read.
        customer_ids: restrict to these customers (default: every customer signed up
            before ``now``).
        categories: message type -> category (transactional, service, marketing), e.g.
            from the policy's message catalogue; unknown types count as marketing.

    Returns:
        A frame sorted by ``customer_id``; list-valued columns ``recent_messages`` and
        ``replenishment_due`` hold dicts.
    """
    now = pd.Timestamp(now)
    cats = {**DEFAULT_CATEGORIES, **(categories or {})}
    cust = tables[C.CUSTOMERS]
    cust = cust.loc[(cust[C.SIGNUP_AT] < now).to_numpy(dtype=bool)]
    if customer_ids is not None:
        cust = cust.loc[cust[C.CUSTOMER_ID].isin(np.asarray(customer_ids)).to_numpy()]
    cust = cust.sort_values(C.CUSTOMER_ID, kind="stable")
    ids = pd.Index(cust[C.CUSTOMER_ID].to_numpy(dtype=np.int64), name=C.CUSTOMER_ID)

    orders = _before(tables[C.ORDERS], C.ORDERED_AT, now)
    year = orders.loc[(orders[C.ORDERED_AT] >= now - YEAR).to_numpy(dtype=bool)]
    returns = _before(tables[C.RETURNS], C.REQUESTED_AT, now)
    returns_year = returns.loc[(returns[C.REQUESTED_AT] >= now - YEAR).to_numpy(dtype=bool)]
    claims = _before(tables[C.CLAIMS], C.CLAIMED_AT, now)
    fraud = pd.concat(
        [
            returns.loc[returns[C.CONFIRMED_FRAUD].to_numpy(dtype=bool), [C.CUSTOMER_ID]],
            claims.loc[claims[C.CONFIRMED_FRAUD].to_numpy(dtype=bool), [C.CUSTOMER_ID]],
        ]
    )
    loyalty = _before(tables[C.LOYALTY_EVENTS], C.EVENT_AT, now).sort_values(
        [C.CUSTOMER_ID, C.EVENT_AT], kind="stable"
    )
    tiers = loyalty.loc[(loyalty[C.EVENT_TYPE] == "tier_change").to_numpy(dtype=bool)]
    sub = _active_subscription(tables[C.SUBSCRIPTIONS], ids, now)
    messages = tables[C.MESSAGES]
    recent = _recent_messages(messages, now, cats)
    due = _running_out(tables, now)

    birth = pd.to_datetime(cust[C.BIRTH_DATE])
    out = pd.DataFrame(
        {
            C.CUSTOMER_ID: ids.to_numpy(),
            C.TIER: _per_customer(ids, tiers.groupby(C.CUSTOMER_ID)[C.TIER].last(), "bronze"),
            "spend_12m": _per_customer(
                ids, year.groupby(C.CUSTOMER_ID)[C.ORDER_VALUE].sum(), 0.0
            ).astype(float),
            "points_balance": _per_customer(
                ids, loyalty.groupby(C.CUSTOMER_ID)[C.POINTS].sum(), 0
            ).astype(np.int64),
            "orders_12m": _per_customer(ids, year.groupby(C.CUSTOMER_ID).size(), 0).astype(
                np.int64
            ),
            "returns_12m": _per_customer(ids, returns_year.groupby(C.CUSTOMER_ID).size(), 0).astype(
                np.int64
            ),
            "confirmed_fraud": _per_customer(ids, fraud.groupby(C.CUSTOMER_ID).size(), 0).astype(
                np.int64
            ),
            C.SIGNUP_AT: cust[C.SIGNUP_AT].to_numpy(),
            C.BIRTH_DATE: birth.to_numpy(),
            "last_order_at": orders.groupby(C.CUSTOMER_ID)[C.ORDERED_AT].max().reindex(ids),
            C.SUBSCRIPTION_ID: sub.to_numpy(),
            C.EMAIL: cust[C.EMAIL].to_numpy(),
            # SMS and push go to these; a store without them leaves those rows unsendable
            C.PHONE: cust[C.PHONE].to_numpy() if C.PHONE in cust else None,
            C.DEVICE_ID: cust[C.DEVICE_ID].to_numpy() if C.DEVICE_ID in cust else None,
            C.EMAIL_OPT_IN: cust[C.EMAIL_OPT_IN].to_numpy(dtype=bool),
            C.SMS_OPT_IN: cust[C.SMS_OPT_IN].to_numpy(dtype=bool),
            C.PUSH_OPT_IN: cust[C.PUSH_OPT_IN].to_numpy(dtype=bool),
            "last_win_back_at": _last_sent(messages, now, "win_back").reindex(ids),
            "last_replenishment_reminder_at": _last_sent(
                messages, now, "replenishment_reminder"
            ).reindex(ids),
        }
    )
    out["has_active_subscription"] = out[C.SUBSCRIPTION_ID].notna().to_numpy()
    out[C.SUBSCRIPTION_ID] = out[C.SUBSCRIPTION_ID].astype("Int64")
    out["recent_messages"] = [recent.get(int(c), []) for c in ids]
    out["replenishment_due"] = [due.get(int(c), []) for c in ids]
    return out.reset_index(drop=True)


def _py(v):
    """A cell as a plain Python value (None for missing)."""
    if v is None or v is pd.NaT:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, pd.Timestamp | np.datetime64):
        t = pd.Timestamp(v)
        return None if pd.isna(t) else t.to_pydatetime()
    if isinstance(v, np.generic):
        return v.item()
    return v


def context_of(row: Mapping):
    """A :func:`daily_contexts` row -> :class:`ppx.rules.types.CustomerContext`."""
    from ppx.rules.types import CustomerContext

    birth = _py(row[C.BIRTH_DATE])
    sub = row[C.SUBSCRIPTION_ID]
    return CustomerContext(
        customer_id=int(row[C.CUSTOMER_ID]),
        tier=str(row[C.TIER]),
        spend_12m=round(float(row["spend_12m"]), 2),
        points_balance=int(row["points_balance"]),
        orders_12m=int(row["orders_12m"]),
        returns_12m=int(row["returns_12m"]),
        confirmed_fraud=int(row["confirmed_fraud"]),
        signup_at=_py(row[C.SIGNUP_AT]),
        birth_date=birth.date() if birth is not None else None,
        last_order_at=_py(row["last_order_at"]),
        has_active_subscription=bool(row["has_active_subscription"]),
        subscription_id=None if pd.isna(sub) else int(sub),
        email=_py(row[C.EMAIL]),
        phone=_py(row.get(C.PHONE)),
        device_id=_py(row.get(C.DEVICE_ID)),
        email_opt_in=bool(row[C.EMAIL_OPT_IN]),
        sms_opt_in=bool(row[C.SMS_OPT_IN]),
        push_opt_in=bool(row[C.PUSH_OPT_IN]),
        last_win_back_at=_py(row["last_win_back_at"]),
        last_replenishment_reminder_at=_py(row["last_replenishment_reminder_at"]),
        recent_messages=list(row["recent_messages"])[-1000:],
        replenishment_due=list(row["replenishment_due"]),
    )
