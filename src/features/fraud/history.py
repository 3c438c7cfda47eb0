"""The event history the features read, offline from tables or from a snapshot."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features.fraud.names import FAR_GPS_M, LABEL_AT
from ppx.features.fraud.requests import claim_requests, delivered_at
from ppx.features.identity import (
    DEFAULT_SALT,
    hash_identities,
    salt_digest,
)


@dataclass
class FraudHistory:
    """Event-level history the features are computed from, identifiers hashed.

    Attributes:
        identities: ``customer_id``, ``signup_at`` and hashed identifier columns.
        orders: one row per order: customer, ordered_at, order_value, delivered_at.
        items: one row per delivered order line: customer, product, category, time.
        returns: customer, product, category, requested_at, lag_days, amount, label,
            label_at (when the investigation outcome became known).
        claims: customer, claimed_at, amount, unexplained, fast, label, label_at.
        products: product_id, category, price (the catalogue the requests refer to).
        meta: label delay, salt digest, the time the snapshot was taken.
    """

    identities: pd.DataFrame
    orders: pd.DataFrame
    items: pd.DataFrame
    returns: pd.DataFrame
    claims: pd.DataFrame
    products: pd.DataFrame
    meta: dict = field(default_factory=dict)

    _TABLES = ("identities", "orders", "items", "returns", "claims", "products")

    def save(self, folder: str | Path) -> Path:
        """Parquet per table plus ``meta.json``: the pyfunc artifact (hashed only)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name in self._TABLES:
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "meta.json").write_text(json.dumps(self.meta, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> FraudHistory:
        folder = Path(folder)
        tables = {n: pd.read_parquet(folder / f"{n}.parquet") for n in cls._TABLES}
        meta = json.loads((folder / "meta.json").read_text())
        return cls(**tables, meta=meta)

    def known_customers(self) -> np.ndarray:
        return self.identities[C.CUSTOMER_ID].to_numpy()


def build_history(
    tables: dict[str, pd.DataFrame],
    label_delay_days: float = 14.0,
    salt: str = DEFAULT_SALT,
    until: pd.Timestamp | str | None = None,
) -> FraudHistory:
    """Event history from canonical tables, identifiers hashed, optionally cut at ``until``.

    Args:
        tables: canonical tables (customers, products, orders, order_items, shipments,
            returns, claims).
        label_delay_days: how long an investigation takes; a request's
            ``confirmed_fraud`` label is usable by later requests only after this.
        salt: identifier hashing salt (``ppx.features.identity``).
        until: drop every event at or after this time (snapshots for a holdout).
    """
    cut = pd.Timestamp(until) if until is not None else None
    delay = pd.to_timedelta(label_delay_days, unit="D")
    cust = tables[C.CUSTOMERS]
    if cut is not None:
        cust = cust[cust[C.SIGNUP_AT] < cut]
    identities = hash_identities(cust, salt=salt)
    products = tables[C.PRODUCTS][[C.PRODUCT_ID, C.CATEGORY, C.PRICE]].copy()
    deliv = delivered_at(tables)
    o = tables[C.ORDERS]
    orders = pd.DataFrame(
        {
            C.CUSTOMER_ID: o[C.CUSTOMER_ID].to_numpy(),
            C.ORDER_ID: o[C.ORDER_ID].to_numpy(),
            C.ORDERED_AT: o[C.ORDERED_AT].to_numpy(),
            C.ORDER_VALUE: o[C.ORDER_VALUE].to_numpy(dtype=float),
            C.DELIVERED_AT: deliv.reindex(o[C.ORDER_ID].to_numpy()).to_numpy(),
        }
    )
    it = tables[C.ORDER_ITEMS].merge(
        orders[[C.ORDER_ID, C.CUSTOMER_ID, C.DELIVERED_AT]], on=C.ORDER_ID, how="inner"
    )
    it = it[it[C.DELIVERED_AT].notna()]
    it = it.merge(products[[C.PRODUCT_ID, C.CATEGORY]], on=C.PRODUCT_ID, how="left")
    items = it[[C.CUSTOMER_ID, C.PRODUCT_ID, C.CATEGORY, C.DELIVERED_AT]].reset_index(drop=True)
    r = tables[C.RETURNS].merge(products[[C.PRODUCT_ID, C.CATEGORY]], on=C.PRODUCT_ID, how="left")
    r_deliv = deliv.reindex(r[C.ORDER_ID].to_numpy()).to_numpy()
    returns = pd.DataFrame(
        {
            C.CUSTOMER_ID: r[C.CUSTOMER_ID].to_numpy(),
            C.PRODUCT_ID: r[C.PRODUCT_ID].to_numpy(),
            C.CATEGORY: r[C.CATEGORY].to_numpy(),
            C.REQUESTED_AT: r[C.REQUESTED_AT].to_numpy(),
            "lag_days": (r[C.REQUESTED_AT].to_numpy() - r_deliv) / pd.Timedelta(days=1),
            C.AMOUNT: r[C.REFUND_AMOUNT].to_numpy(dtype=float),
            C.CONFIRMED_FRAUD: r[C.CONFIRMED_FRAUD].to_numpy(dtype=bool),
            LABEL_AT: (r[C.REQUESTED_AT] + delay).to_numpy(),
        }
    )
    cl = tables[C.CLAIMS]
    ev = claim_requests(tables)
    returns_ok = returns
    claims = pd.DataFrame(
        {
            C.CUSTOMER_ID: cl[C.CUSTOMER_ID].to_numpy(),
            C.REQUESTED_AT: cl[C.CLAIMED_AT].to_numpy(),
            C.AMOUNT: cl[C.AMOUNT].to_numpy(dtype=float),
            "unexplained": (
                ev[C.DELIVERED_AT].notna() & (ev[C.GPS_DISTANCE_M].fillna(0) <= FAR_GPS_M)
            ).to_numpy(),
            "fast": (
                (ev[C.REQUESTED_AT] - ev[C.DELIVERED_AT]) / pd.Timedelta(hours=1) < 24
            ).to_numpy(),
            C.CONFIRMED_FRAUD: cl[C.CONFIRMED_FRAUD].to_numpy(dtype=bool),
            LABEL_AT: (cl[C.CLAIMED_AT] + delay).to_numpy(),
        }
    )
    if cut is not None:
        orders = orders[orders[C.ORDERED_AT] < cut]
        orders.loc[orders[C.DELIVERED_AT] >= cut, C.DELIVERED_AT] = pd.NaT
        items = items[items[C.DELIVERED_AT] < cut]
        returns_ok = returns_ok[returns_ok[C.REQUESTED_AT] < cut].copy()
        claims = claims[claims[C.REQUESTED_AT] < cut].copy()
        # Outcomes not known by the cut are unknown to the snapshot.
        for frame in (returns_ok, claims):
            late = frame[LABEL_AT] >= cut
            frame.loc[late, C.CONFIRMED_FRAUD] = False
            frame.loc[late, LABEL_AT] = pd.NaT
    meta = {
        "label_delay_days": float(label_delay_days),
        "salt_digest": salt_digest(salt),
        "as_of": str(cut) if cut is not None else str(_max_time(tables)),
    }
    return FraudHistory(
        identities=identities.reset_index(drop=True),
        orders=orders.reset_index(drop=True),
        items=items,
        returns=returns_ok.reset_index(drop=True),
        claims=claims.reset_index(drop=True),
        products=products.reset_index(drop=True),
        meta=meta,
    )


def _max_time(tables) -> pd.Timestamp:
    return max(tables[C.ORDERS][C.ORDERED_AT].max(), tables[C.RETURNS][C.REQUESTED_AT].max())
