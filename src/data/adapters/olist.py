"""Olist (Brazilian e-commerce, Kaggle ``olistbr/brazilian-ecommerce``) -> delivery frames.

Accepts the full public layout (ISO timestamps, ``2017-10-02 10:56:33``) and the partial
copy in ``../shared/datasets/olist_sample`` (``M/D/YYYY H:MM``). Olist has one carrier
view per order: purchase, carrier hand-over, customer delivery, and Olist's own
estimated delivery date (its promise). The copy is thin: its orders file has every
order's timestamps, but customers / items / products are partial copies, so only about
10 % of orders join to a customer state (the destination) and a similar share to
items (seller state, weight). Unjoined fields become ``"unknown"`` / NaN - the model
must lean on time, recent delivery speed and Olist's own estimate.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C

ORDERS_FILE = "olist_orders_dataset.csv"
CUSTOMERS_FILE = "olist_customers_dataset.csv"
ITEMS_FILE = "olist_order_items_dataset.csv"
PRODUCTS_FILE = "olist_products_dataset.csv"
SELLERS_FILE = "olist_sellers_dataset.csv"

TIME_COLUMNS = (
    "order_purchase_timestamp",
    "order_approved_at",
    "order_delivered_carrier_date",
    "order_delivered_customer_date",
    "order_estimated_delivery_date",
)
log = logging.getLogger(__name__)

CARRIER = "olist"
# Olist statuses of an order that is on its way to the customer but not delivered.
OPEN_STATUSES = ("created", "approved", "processing", "invoiced", "shipped")
NEVER_SHIPPED = ("canceled", "unavailable")
STALE_DAYS = 60  # still open this long after purchase at the data end: reported as stale
UNKNOWN = "unknown"
ESTIMATE_DAYS = "olist_estimate_days"


def parse_olist_time(values: pd.Series, column: str = "timestamp") -> pd.Series:
    """Parse either layout: ISO ``YYYY-MM-DD HH:MM:SS`` or ``M/D/YYYY H:MM``.

    The layout is detected from the first non-empty value; a value that does not parse
    in that layout raises a ValueError naming the column and the value.
    """
    s = values.astype("str").where(values.notna())
    s = s.str.strip()
    s = s.where(s != "")
    first = s.dropna()
    if first.empty:
        return pd.to_datetime(s)
    fmt = "%m/%d/%Y %H:%M" if "/" in first.iloc[0] else "ISO8601"
    out = pd.to_datetime(s, format=fmt, errors="coerce")
    bad = out.isna() & s.notna()
    if bad.any():
        raise ValueError(
            f"olist {column}: cannot parse {s[bad].iloc[0]!r} as "
            f"{'M/D/YYYY H:MM' if fmt != 'ISO8601' else 'ISO 8601'}"
        )
    return out


def _read(folder: Path, name: str, required: bool = True) -> pd.DataFrame | None:
    path = folder / name
    if not path.exists():
        if required:
            raise FileNotFoundError(f"olist: {name} not found in {folder}")
        return None
    return pd.read_csv(path)


def load_olist(folder: str | Path) -> pd.DataFrame:
    """One row per order with timestamps, Olist's promise and whatever joins.

    Columns: ``order_id``, ``status``, ``ordered_at``, ``approved_at``, ``shipped_at``,
    ``delivered_at``, ``estimated_at``, ``olist_estimate_days`` (calendar days from the
    purchase date to the estimate), ``customer_state``, ``seller_state`` (NaN when the
    partial tables do not join), ``weight_kg``, ``price``, ``freight_value``.
    """
    folder = Path(folder)
    o = _read(folder, ORDERS_FILE)
    missing = [c for c in ("order_id", "customer_id", "order_status", *TIME_COLUMNS) if c not in o]
    if missing:
        raise ValueError(f"olist {ORDERS_FILE}: missing columns {missing}")
    for c in TIME_COLUMNS:
        o[c] = parse_olist_time(o[c], c)
    out = pd.DataFrame(
        {
            C.ORDER_ID: o["order_id"].astype(str),
            "customer_key": o["customer_id"].astype(str),
            C.STATUS: o["order_status"].astype(str),
            C.ORDERED_AT: o["order_purchase_timestamp"],
            "approved_at": o["order_approved_at"],
            C.SHIPPED_AT: o["order_delivered_carrier_date"],
            C.DELIVERED_AT: o["order_delivered_customer_date"],
            "estimated_at": o["order_estimated_delivery_date"],
        }
    )
    out[ESTIMATE_DAYS] = (
        out["estimated_at"].dt.normalize() - out[C.ORDERED_AT].dt.normalize()
    ).dt.days.astype(float)
    cust = _read(folder, CUSTOMERS_FILE, required=False)
    if cust is not None:
        state = cust.drop_duplicates("customer_id").set_index("customer_id")["customer_state"]
        out["customer_state"] = out["customer_key"].map(state)
    else:
        out["customer_state"] = np.nan
    items = _read(folder, ITEMS_FILE, required=False)
    out["seller_state"] = np.nan
    out[C.WEIGHT_KG] = np.nan
    out[C.PRICE] = np.nan
    out["freight_value"] = np.nan
    if items is not None:
        prods = _read(folder, PRODUCTS_FILE, required=False)
        sellers = _read(folder, SELLERS_FILE, required=False)
        it = items.copy()
        if prods is not None:
            w = prods.drop_duplicates("product_id").set_index("product_id")["product_weight_g"]
            it["w"] = it["product_id"].map(w) / 1000.0
        else:
            it["w"] = np.nan
        if sellers is not None:
            ss = sellers.drop_duplicates("seller_id").set_index("seller_id")["seller_state"]
            it["ss"] = it["seller_id"].map(ss)
        else:
            it["ss"] = np.nan
        g = it.groupby("order_id")
        agg = pd.DataFrame(
            {
                "seller_state": g["ss"].first(),
                C.WEIGHT_KG: g["w"].sum(min_count=1),
                C.PRICE: g["price"].sum(),
                "freight_value": g["freight_value"].sum(),
            }
        )
        for c in agg.columns:
            out[c] = out[C.ORDER_ID].map(agg[c])
    out = out.sort_values(C.ORDERED_AT, kind="stable").reset_index(drop=True)
    warn_unresolved(out, ORDERS_FILE)
    return out


def data_end(olist: pd.DataFrame) -> pd.Timestamp:
    """The export's snapshot moment: its latest recorded event (purchase, approval,
    hand-over or delivery). Orders open then were still open when it was taken."""
    cols = [C.ORDERED_AT, "approved_at", C.SHIPPED_AT, C.DELIVERED_AT]
    return max(olist[c].max() for c in cols if c in olist and olist[c].notna().any())


def unresolved_orders(olist: pd.DataFrame, stale_days: int = STALE_DAYS) -> dict[str, pd.Series]:
    """Orders whose delivery outcome the export does not state, by kind (boolean masks):

    * ``delivered_without_date``: status ``delivered`` but no customer delivery date -
      the outcome is unknown, so delivery benchmarks leave them out (with a count);
    * ``delivered_before_purchase``: a delivery date before the purchase - a broken
      record, left out like an undated one (with a count);
    * ``open_stale``: still ``shipped`` / ``invoiced`` / ``processing`` / ... more than
      ``stale_days`` after purchase at the data end - almost surely lost or abandoned;
      delivery benchmarks score them as missing every promise that ended before the
      data end (late), never drop them;
    * ``open_recent``: open, purchased within ``stale_days`` of the data end (in flight).
    """
    status = olist[C.STATUS].astype(str)
    no_date = olist[C.DELIVERED_AT].isna()
    open_ = status.isin(OPEN_STATUSES) & no_date
    age = (data_end(olist) - olist[C.ORDERED_AT]).dt.days
    return {
        "delivered_without_date": (status == "delivered") & no_date,
        "delivered_before_purchase": olist[C.DELIVERED_AT] < olist[C.ORDERED_AT],
        "open_stale": open_ & (age > stale_days),
        "open_recent": open_ & (age <= stale_days),
    }


def warn_unresolved(olist: pd.DataFrame, source: str = ORDERS_FILE) -> dict[str, int]:
    """Log one warning per kind of order without a stated delivery outcome (see
    :func:`unresolved_orders`), naming the file, the count and a few order ids."""
    counts = {}
    rules = {
        "delivered_without_date": "status 'delivered' without order_delivered_customer_date"
        " (outcome unknown: left out of delivery scores, counted)",
        "delivered_before_purchase": "delivered before their purchase time (broken dates:"
        " left out of delivery scores, counted)",
        "open_stale": f"still open (shipped / invoiced / processing) more than {STALE_DAYS}"
        " days after purchase at the data end (scored as late once their promise ended)",
    }
    for kind, mask in unresolved_orders(olist).items():
        counts[kind] = int(mask.sum())
        if kind in rules and counts[kind]:
            ids = olist.loc[mask, C.ORDER_ID].head(3).tolist()
            log.warning("olist %s: %d orders %s, e.g. %s", source, counts[kind], rules[kind], ids)
    return counts


def to_canonical(olist: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Orders and shipments in the canonical columns the delivery features read.

    Olist is one marketplace "carrier" with one service level; the seller's state plays
    the warehouse, the customer's state the destination; distance is unknown; Olist's
    own estimate is the SLA (``promised_days``), known at purchase.
    """
    seller = olist["seller_state"].fillna(UNKNOWN).astype(str)
    orders = pd.DataFrame(
        {
            C.ORDER_ID: np.arange(1, len(olist) + 1, dtype=np.int64),
            C.ORDERED_AT: olist[C.ORDERED_AT],
            C.WAREHOUSE: seller,
            C.ORIGIN_REGION: seller,
            C.DEST_REGION: olist["customer_state"].fillna(UNKNOWN).astype(str),
            C.DISTANCE_KM: np.nan,
            C.CARRIER: CARRIER,
            C.SERVICE_LEVEL: "standard",
            C.PROMISED_DAYS: olist[ESTIMATE_DAYS].to_numpy(float),
        }
    )
    shipments = pd.DataFrame(
        {
            C.SHIPMENT_ID: orders[C.ORDER_ID],
            C.ORDER_ID: orders[C.ORDER_ID],
            C.SHIPPED_AT: olist[C.SHIPPED_AT],
            C.DELIVERED_AT: olist[C.DELIVERED_AT],
            C.STATUS: olist[C.STATUS].to_numpy(),
            C.WEIGHT_KG: olist[C.WEIGHT_KG].to_numpy(float),
        }
    )
    return {C.ORDERS: orders, C.SHIPMENTS: shipments}


def coverage_report(olist: pd.DataFrame) -> dict[str, float]:
    """How thin the copy is: share of orders joined to each partial table."""
    return {
        "orders": float(len(olist)),
        "joined_customer_state": float(olist["customer_state"].notna().mean()),
        "joined_items": float(olist["seller_state"].notna().mean()),
        "joined_weight": float(olist[C.WEIGHT_KG].notna().mean()),
        "delivered": float(olist[C.DELIVERED_AT].notna().mean()),
    }
