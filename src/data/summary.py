"""Headline rates of a set of canonical tables (used by the demo and the world tests)."""

from __future__ import annotations

import pandas as pd

from ppx.data import columns as C


def late_mask(orders: pd.DataFrame, shipments: pd.DataFrame) -> pd.Series:
    """Delivered shipments that arrived after the promised date (indexed like shipments)."""
    s = shipments.merge(orders[[C.ORDER_ID, C.PROMISED_DATE]], on=C.ORDER_ID, how="left")
    delivered = s[C.STATUS] == "delivered"
    late = delivered & (s[C.DELIVERED_AT].dt.normalize() > s[C.PROMISED_DATE])
    return pd.Series(late.to_numpy(), index=shipments.index)


def world_summary(tables: dict[str, pd.DataFrame]) -> dict[str, float]:
    """Rows per table and the rates a brand would look at first."""
    o, s = tables[C.ORDERS], tables[C.SHIPMENTS]
    delivered = s[C.STATUS] == "delivered"
    out: dict[str, float] = {f"rows_{k}": len(v) for k, v in tables.items()}
    out["late_delivery_rate"] = float(late_mask(o, s)[delivered].mean())
    r = tables[C.RETURNS]
    out["return_rate_orders"] = float(r[C.ORDER_ID].nunique() / max(len(o), 1))
    out["fraud_share_of_returns"] = float(r[C.CONFIRMED_FRAUD].mean()) if len(r) else 0.0
    cl = tables[C.CLAIMS]
    out["claim_rate_orders"] = float(len(cl) / max(len(o), 1))
    out["fraud_share_of_claims"] = float(cl[C.CONFIRMED_FRAUD].mean()) if len(cl) else 0.0
    out["monthly_churn_rate"] = monthly_churn_rate(tables)
    return out


def monthly_churn_rate(tables: dict[str, pd.DataFrame]) -> float:
    """Cancellations per active subscription-month, from the observable tables only."""
    subs = tables[C.SUBSCRIPTIONS]
    if subs.empty:
        return 0.0
    end = tables[C.ORDERS][C.ORDERED_AT].max()
    stop = subs[C.CANCELLED_AT].fillna(end)
    months_active = ((stop - subs[C.STARTED_AT]).dt.total_seconds() / 86_400 / 30.44).clip(lower=0)
    return float(subs[C.CANCELLED_AT].notna().sum() / max(months_active.sum(), 1e-9))
