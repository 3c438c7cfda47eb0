"""Seed the subscription state table from a world's or store's canonical tables.

A brand starting with ppx already has subscriptions; the self-service API needs their
current state (cadence, price, next delivery, pause). This reads ``subscriptions`` and
``subscription_events`` and registers every subscription still running at the data's
end: the cadence from the plan, the price after the last price change, paused when the
last pause's resume lies after the end, and the next delivery one cadence after the last
renewal (rolled forward past the end). Each is registered with the request key
``import:<subscription_id>``, so running the import twice changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pandas as pd

from ppx.data import columns as C
from ppx.data.io import read_table_file
from ppx.rules.subscriptions.lifecycle import Subscription, TransitionError
from ppx.rules.subscriptions.store import SubscriptionStore

#: Days between deliveries of each canonical plan.
PLAN_DAYS = {"monthly": 30, "biweekly": 14}


def current_subscriptions(folder: Path) -> tuple[list[Subscription], datetime]:
    """The subscriptions running at the data's end, and that end."""
    tables = Path(folder) / "tables"
    subs = read_table_file(tables / f"{C.SUBSCRIPTIONS}.parquet")
    ev = read_table_file(tables / f"{C.SUBSCRIPTION_EVENTS}.parquet")
    ev = ev.sort_values([C.SUBSCRIPTION_ID, C.EVENT_AT], kind="stable")
    end = pd.Timestamp(ev[C.EVENT_AT].max()) if len(ev) else pd.Timestamp.now()
    # Planned resumes lie after the end; the data ends with the last event before them.
    past = ev[ev[C.EVENT_AT] <= end]
    end = pd.Timestamp(past.loc[past[C.EVENT_TYPE] != "resume", C.EVENT_AT].max())
    running = subs[subs[C.CANCELLED_AT].isna() | (subs[C.CANCELLED_AT] > end)]
    unknown = sorted(set(running[C.PLAN].astype(str)) - set(PLAN_DAYS))
    if unknown:
        raise ValueError(
            f"{tables / 'subscriptions.parquet'}: column {C.PLAN} has plans {unknown} "
            f"without a cadence; known plans are {sorted(PLAN_DAYS)}"
        )
    by_sub = {int(k): g for k, g in ev.groupby(C.SUBSCRIPTION_ID, sort=False)}
    out = []
    for r in running.itertuples(index=False):
        sid = int(getattr(r, C.SUBSCRIPTION_ID))
        cadence = PLAN_DAYS[str(getattr(r, C.PLAN))]
        g = by_sub.get(sid)
        price = float(getattr(r, C.PRICE))
        last = pd.Timestamp(getattr(r, C.STARTED_AT))
        paused_until = None
        if g is not None:
            changes = g[(g[C.EVENT_TYPE] == "price_change") & (g[C.EVENT_AT] <= end)]
            if len(changes):
                price = float(changes[C.NEW_VALUE].iloc[-1])
            renew = g[(g[C.EVENT_TYPE] == "renew") & (g[C.EVENT_AT] <= end)]
            if len(renew):
                last = pd.Timestamp(renew[C.EVENT_AT].iloc[-1])
            resumes = g[(g[C.EVENT_TYPE] == "resume") & (g[C.EVENT_AT] > end)]
            if len(resumes):
                paused_until = pd.Timestamp(resumes[C.EVENT_AT].iloc[0])
        step = pd.Timedelta(days=cadence)
        nxt = last + step
        while nxt <= end:
            nxt += step
        if paused_until is not None:
            nxt = max(nxt, paused_until)
        out.append(
            Subscription(
                subscription_id=sid,
                customer_id=int(getattr(r, C.CUSTOMER_ID)),
                product_id=int(getattr(r, C.PRODUCT_ID)),
                status="paused" if paused_until is not None else "active",
                cadence_days=cadence,
                price=round(price, 2),
                next_delivery_at=nxt.to_pydatetime(),
                paused_until=None if paused_until is None else paused_until.to_pydatetime(),
            )
        )
    return out, end.to_pydatetime()


def import_subscriptions(
    folder: Path, store: SubscriptionStore, progress: Callable[[int], None] | None = None
) -> dict:
    """Register the running subscriptions; returns counts (new, already there)."""
    subs, end = current_subscriptions(folder)
    new = known = 0
    for i, sub in enumerate(subs):
        try:
            res = store.upsert(sub, f"import:{sub.subscription_id}", end)
        except TransitionError as err:
            if err.status != 409:  # registered earlier by the API, not by an import
                raise
            known += 1
        else:
            known += bool(res["replayed"])
            new += not res["replayed"]
        if progress is not None:
            progress(i + 1)
    return {"subscriptions": len(subs), "registered": new, "already_known": known, "as_of": end}
