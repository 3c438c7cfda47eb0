"""Customer-days on which a daily rule (birthday, win-back, replenishment) may fire."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.rules.policy import Policy
from ppx.rules.simulator.config import SimulationConfig
from ppx.rules.simulator.inputs import WorldEvents


def daily_candidates(ev: WorldEvents, policies: list[Policy], cfg: SimulationConfig):
    """(customer, day) pairs on which a daily rule may fire, with replenishment items due.

    decide_daily checks every rule itself; this only avoids calling it on the 14 million
    customer-days where nothing can happen. Candidate days are the union over policies.
    """
    start, end = ev.start, ev.end
    rows: list[pd.DataFrame] = []
    cust = ev.customers
    years = range(start.year, end.year + 1)
    for col in (C.BIRTH_DATE, C.SIGNUP_AT):
        d = pd.to_datetime(cust[col])
        ok = d.notna()
        for y in years:
            month = d[ok].dt.month.to_numpy()
            day = d[ok].dt.day.to_numpy()
            leap = (y % 4 == 0) and (y % 100 != 0 or y % 400 == 0)
            day = np.where((month == 2) & (day == 29) & (not leap), 28, day)
            when = pd.to_datetime(
                pd.DataFrame({"year": y, "month": month, "day": day}), errors="coerce"
            )
            rows.append(pd.DataFrame({"c": cust.loc[ok, C.CUSTOMER_ID].to_numpy(), "day": when}))
    # Lapsed customers: last order + min_days, then every recheck interval.
    o = ev.orders.sort_values([C.CUSTOMER_ID, C.ORDERED_AT])
    c = o[C.CUSTOMER_ID].to_numpy()
    t = o[C.ORDERED_AT].to_numpy()
    nxt = np.r_[t[1:], np.datetime64("NaT")]
    same = np.r_[c[1:] == c[:-1], False]
    nxt = np.where(same, nxt, np.datetime64(end.to_datetime64()))
    day_ns = np.timedelta64(1, "D")
    for wb in {
        (p.daily.win_back.min_days_since_order, p.daily.win_back.max_days_since_order)
        for p in policies
    }:
        first = t + wb[0] * day_ns
        stop = np.minimum(nxt, t + wb[1] * day_ns)
        n = np.maximum(
            ((stop - first) / day_ns // cfg.win_back_recheck_days).astype(np.int64) + 1, 0
        )
        n = np.where(first < stop, n, 0)
        idx = np.repeat(np.arange(len(t)), n)
        k = np.arange(len(idx)) - np.repeat(np.cumsum(n) - n, n)
        when = first[idx] + k * cfg.win_back_recheck_days * day_ns
        rows.append(pd.DataFrame({"c": c[idx], "day": pd.to_datetime(when)}))
    # Consumables running out (one-off lines only; renewals are subscriptions).
    prod = ev.products.set_index(C.PRODUCT_ID)
    li = ev.items.merge(
        ev.orders[[C.ORDER_ID, C.CUSTOMER_ID, C.ORDERED_AT, C.IS_RENEWAL]], on=C.ORDER_ID
    )
    li = li[~li[C.IS_RENEWAL].to_numpy()]
    li = li[prod[C.IS_CONSUMABLE].reindex(li[C.PRODUCT_ID]).fillna(False).to_numpy(dtype=bool)]
    days = prod[C.REPLENISH_DAYS].reindex(li[C.PRODUCT_ID]).to_numpy()
    li = li.assign(due=li[C.ORDERED_AT] + pd.to_timedelta(days, unit="D"))
    li = li.sort_values([C.CUSTOMER_ID, C.PRODUCT_ID, C.ORDERED_AT])
    again = li.groupby([C.CUSTOMER_ID, C.PRODUCT_ID])[C.ORDERED_AT].shift(-1)
    subs = ev.subs
    due_items = []
    for lead in sorted({p.daily.replenishment.lead_days for p in policies}):
        cand = li.assign(day=(li["due"] - pd.Timedelta(days=lead)).dt.normalize())
        ok = again.isna() | (again > cand["day"])
        cand = cand[ok.to_numpy()]
        # Not while subscribed to that product.
        m = cand.merge(
            subs[[C.CUSTOMER_ID, C.PRODUCT_ID, C.STARTED_AT, C.CANCELLED_AT]],
            on=[C.CUSTOMER_ID, C.PRODUCT_ID],
            how="left",
        )
        active = (m[C.STARTED_AT] <= m["due"]) & (
            m[C.CANCELLED_AT].isna() | (m[C.CANCELLED_AT] > m["due"])
        )
        blocked = m.loc[active.to_numpy(), [C.ORDER_ID, C.PRODUCT_ID]].drop_duplicates()
        key = cand[C.ORDER_ID].astype(str) + ":" + cand[C.PRODUCT_ID].astype(str)
        bkey = set(
            (blocked[C.ORDER_ID].astype(str) + ":" + blocked[C.PRODUCT_ID].astype(str)).tolist()
        )
        cand = cand[~key.isin(bkey).to_numpy()]
        due_items.append(cand[[C.CUSTOMER_ID, C.PRODUCT_ID, "due", "day"]])
        rows.append(pd.DataFrame({"c": cand[C.CUSTOMER_ID].to_numpy(), "day": cand["day"]}))
    cand = pd.concat(rows, ignore_index=True).dropna()
    cand["day"] = pd.to_datetime(cand["day"]).dt.normalize()
    cand = cand[(cand["day"] >= start) & (cand["day"] < end)].drop_duplicates()
    signup = ev.customers.set_index(C.CUSTOMER_ID)[C.SIGNUP_AT]
    cand = cand[cand["day"].to_numpy() >= signup.reindex(cand["c"]).dt.normalize().to_numpy()]
    due = pd.concat(due_items, ignore_index=True).drop_duplicates()
    return cand.sort_values(["day", "c"], kind="stable").reset_index(drop=True), due


# --- the replay --------------------------------------------------------------------------
