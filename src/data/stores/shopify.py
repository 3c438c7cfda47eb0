"""A platform orders export (Shopify's documented orders-export CSV) plus carrier scans.

The orders export has one row per line item; order-level columns (Email, Financial
Status, Fulfilled at, Total, addresses ...) are filled on an order's first row only, so
they are carried to its other rows. Customers are keyed by e-mail (guest checkouts by
order). ``Accepts Marketing`` is the only consent field: a blank or missing column means
no e-mail marketing. The promise comes from the shipping method's stated days ("Standard
(3-5 business days)": 5 business days = 7 calendar days) or ``--promise-days``.

The tracking-events CSV is the carrier feed joined to orders: columns ``Order`` (the
export's ``Name``), ``Carrier``, ``Event Time`` and ``Status``, optionally ``Location``
and ``Tracking Number``. Statuses are read by their words (label created, picked up, in
transit, out for delivery, delivered, exception).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.stores.build import (
    SOURCE_ROW,
    UNKNOWN,
    ImportReport,
    dense_ids,
    interactions_from_items,
    repair_time_order,
    text_or,
)
from ppx.data.stores.read import (
    StoreImportError,
    parse_flags,
    parse_numbers,
    parse_times,
    read_export,
    require_columns,
    rows_text,
)

NAME = "Name"
EMAIL = "Email"
CREATED_AT = "Created at"
FULFILLED_AT = "Fulfilled at"
CANCELLED_AT = "Cancelled at"
ACCEPTS_MARKETING = "Accepts Marketing"
SHIPPING_METHOD = "Shipping Method"
LINE_QTY = "Lineitem quantity"
LINE_NAME = "Lineitem name"
LINE_PRICE = "Lineitem price"
LINE_SKU = "Lineitem sku"
REQUIRED = (NAME, CREATED_AT, LINE_QTY, LINE_NAME, LINE_PRICE)
#: order-level columns filled only on an order's first row
ORDER_LEVEL = (
    EMAIL,
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    FULFILLED_AT,
    ACCEPTS_MARKETING,
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Amount",
    SHIPPING_METHOD,
    CREATED_AT,
    "Billing Name",
    "Shipping Name",
    "Shipping Address1",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Shipping Phone",
    CANCELLED_AT,
    "Phone",
    "Source",
)

T_ORDER = ("Order", "Order Name", "Name")
T_TIME = ("Event Time", "Timestamp", "Time", "Date")
T_STATUS = ("Status", "Event", "Description")
T_CARRIER = ("Carrier",)
T_LOCATION = ("Location", "Province", "Region")

#: carrier wording -> canonical tracking event type, first match wins
STATUS_WORDS: tuple[tuple[str, str], ...] = (
    (r"out for delivery", "out_for_delivery"),
    (r"not delivered|fail|exception|attempt|delay|return|held|damaged|lost", "exception"),
    (r"delivered", "delivered"),
    (r"label|info(rmation)? received|pre-?transit|created|manifest", "label_created"),
    (r"picked up|pickup|accepted|collected|dropped off|shipped", "picked_up"),
    (r"transit|arrived|departed|hub|facility|processed|sort", "hub_scan"),
)
EXPRESS = re.compile(r"express|priority|next[- ]day|overnight|1[- ]day", re.I)
DAYS = re.compile(r"(\d+)\s*(?:-|–|to)?\s*(\d+)?\s*(business|working)?\s*days?", re.I)


def find_orders_export(source: Path) -> Path | None:
    """The orders export in ``source`` (a file or folder), recognised by its header."""
    candidates = [source] if source.is_file() else sorted(source.glob("*.csv"))
    for p in candidates:
        try:
            head = p.read_bytes()[:4096].decode("utf-8-sig", errors="replace")
        except OSError:
            continue
        first = head.splitlines()[0] if head else ""
        if all(col in first for col in (NAME, CREATED_AT, LINE_NAME)):
            return p
    return None


def find_tracking(source: Path) -> Path | None:
    folder = source if source.is_dir() else source.parent
    for p in sorted(folder.glob("*.csv")):
        head = p.read_bytes()[:2048].decode("utf-8-sig", errors="replace").splitlines()
        if not head or LINE_NAME in head[0]:
            continue
        if any(t in head[0] for t in T_TIME) and any(s in head[0] for s in T_STATUS):
            return p
    return None


def promise_from_method(method: str) -> float:
    """Calendar days promised by a shipping method's name, NaN when it states none."""
    m = DAYS.search(method or "")
    if not m:
        return math.nan
    days = int(m.group(2) or m.group(1))
    return float(math.ceil(days * 7 / 5) if m.group(3) else days)


def event_type(status: str) -> str | None:
    s = (status or "").lower()
    for pattern, kind in STATUS_WORDS:
        if re.search(pattern, s):
            return kind
    return None


def _pick(df: pd.DataFrame, names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in df.columns}
    for n in names:
        if n.lower() in lower:
            return lower[n.lower()]
    return None


def _tracking(path: Path, order_map: pd.Series) -> pd.DataFrame:
    raw = read_export(path)
    cols = {
        k: _pick(raw, v)
        for k, v in (
            ("order", T_ORDER),
            ("time", T_TIME),
            ("status", T_STATUS),
            ("carrier", T_CARRIER),
            ("location", T_LOCATION),
        )
    }
    need = [
        label
        for label, key in (("Order", "order"), ("Event Time", "time"), ("Status", "status"))
        if cols[key] is None
    ]
    if need:
        raise StoreImportError(
            f"{path}: missing column(s) {need} (the file has: {', '.join(raw.columns)})"
        )
    kinds = raw[cols["status"]].map(event_type)
    bad = kinds.isna()
    if bad.any():
        raise StoreImportError(
            f"{path}: column {cols['status']!r}: cannot tell what {raw[cols['status']][bad].iloc[0]!r} "
            f"means (expected words like picked up, in transit, out for delivery, delivered, "
            f"exception) at {rows_text(list(raw.index[bad]))}"
        )
    orders = raw[cols["order"]].astype(str).str.strip()
    unknown = ~orders.isin(order_map.index)
    if unknown.any():
        raise StoreImportError(
            f"{path}: column {cols['order']!r}: order {orders[unknown].iloc[0]!r} is not in the "
            f"orders export at {rows_text(list(raw.index[unknown]))}"
        )
    return pd.DataFrame(
        {
            C.ORDER_ID: orders.map(order_map).to_numpy(np.int64),
            C.EVENT_AT: parse_times(
                raw[cols["time"]], path, cols["time"], nullable=False
            ).to_numpy(),
            C.EVENT_TYPE: kinds.to_numpy(),
            "carrier": (
                raw[cols["carrier"]] if cols["carrier"] else pd.Series(np.nan, index=raw.index)
            ).to_numpy(),
            "location": (
                raw[cols["location"]] if cols["location"] else pd.Series(np.nan, index=raw.index)
            ).to_numpy(),
        }
    )


def import_shopify(
    source: Path, report: ImportReport, tracking: Path | None, promise_days: int | None
) -> dict[str, pd.DataFrame]:
    """Canonical tables from an orders export (and a tracking-events CSV when given)."""
    path = find_orders_export(source) or source
    raw = read_export(path)
    require_columns(raw, path, REQUIRED)
    raw[NAME] = raw[NAME].astype("string").str.strip()
    blank = raw[NAME].isna() | (raw[NAME] == "")
    if blank.any():
        raise StoreImportError(
            f"{path}: column {NAME!r} is blank at {rows_text(list(raw.index[blank]))}"
        )
    present = [c for c in ORDER_LEVEL if c in raw.columns]
    raw[present] = raw.groupby(NAME, sort=False)[present].transform("first")
    created = parse_times(raw[CREATED_AT], path, CREATED_AT, nullable=False)
    qty = parse_numbers(raw[LINE_QTY], path, LINE_QTY, nullable=False)
    price = parse_numbers(raw[LINE_PRICE], path, LINE_PRICE, nullable=False)
    bad_qty = (qty < 1) | (qty != qty.round())
    if bad_qty.any():
        raise StoreImportError(
            f"{path}: column {LINE_QTY!r} must be a whole number >= 1 at {rows_text(list(raw.index[bad_qty]))}"
        )
    first = ~raw[NAME].duplicated()
    source_rows = raw.index[first].to_numpy()
    o = raw[first].reset_index(drop=True)
    o_created = created[first].reset_index(drop=True)
    order_ids, order_map = dense_ids(o[NAME])

    email = (
        o[EMAIL].astype("string").str.strip().str.lower()
        if EMAIL in o
        else pd.Series(pd.NA, index=o.index, dtype="string")
    )
    key = email.where(email.notna() & (email != ""), "guest:" + o[NAME])
    cust_ids, cust_map = dense_ids(key)
    consent = (
        parse_flags(o[ACCEPTS_MARKETING], path, ACCEPTS_MARKETING)
        if ACCEPTS_MARKETING in o
        else pd.Series(False, index=o.index)
    )
    if ACCEPTS_MARKETING not in o:
        report.note(
            f"{path.name}: no {ACCEPTS_MARKETING!r} column: no customer gets marketing e-mail"
        )

    def col(name: str) -> pd.Series:
        return o[name] if name in o else pd.Series(pd.NA, index=o.index, dtype="string")

    province = text_or(col("Shipping Province"), text_or(col("Shipping Country"), UNKNOWN))
    address = (
        col("Shipping Address1").fillna("").astype(str)
        + ", "
        + col("Shipping City").fillna("").astype(str)
        + " "
        + col("Shipping Zip").fillna("").astype(str)
        + ", "
        + col("Shipping Country").fillna("").astype(str)
    ).str.strip(" ,")
    per_order = pd.DataFrame(
        {
            "key": key,
            "t": o_created,
            "name": text_or(col("Billing Name"), text_or(col("Shipping Name"), key)),
            "email": email.fillna(key),
            "phone": text_or(col("Phone"), text_or(col("Shipping Phone"), "")),
            "address": text_or(address, UNKNOWN),
            "region": province,
            "consent": consent,
        }
    ).sort_values("t", kind="stable")
    g = per_order.groupby("key", sort=False)
    firsts, lasts = g.first().loc[cust_map.index], g.last().loc[cust_map.index]
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust_map.to_numpy(np.int64),
            C.SIGNUP_AT: firsts["t"].to_numpy(),
            C.NAME: firsts["name"].to_numpy(),
            C.EMAIL: firsts["email"].astype(str).to_numpy(),
            C.PHONE: lasts["phone"].replace("", None).to_numpy(),
            C.ADDRESS: lasts["address"].to_numpy(),
            C.REGION: lasts["region"].to_numpy(),
            C.DEVICE_ID: None,
            C.PAYMENT_FINGERPRINT: None,
            C.BIRTH_DATE: pd.NaT,
            C.EMAIL_OPT_IN: lasts["consent"].astype(bool).to_numpy(),  # the latest choice
            C.SMS_OPT_IN: False,
            C.PUSH_OPT_IN: False,
            C.REFERRED_BY: pd.array([pd.NA] * len(cust_map), dtype="Int64"),
        }
    )

    # products by SKU (by name when the SKU is blank), lines per order
    sku = (
        raw[LINE_SKU].astype("string").str.strip()
        if LINE_SKU in raw
        else pd.Series(pd.NA, index=raw.index, dtype="string")
    )
    pkey = sku.where(sku.notna() & (sku != ""), "name:" + raw[LINE_NAME].astype(str))
    prod_ids, prod_map = dense_ids(pkey)
    lines = pd.DataFrame(
        {
            "pid": prod_ids,
            "price": price,
            "qty": qty,
            "name": raw[LINE_NAME].astype(str),
            "vendor": raw.get("Vendor", UNKNOWN),
            C.ORDER_ID: raw[NAME].map(order_map).to_numpy(np.int64),
        }
    )
    pg = lines.groupby("pid", sort=True)
    products = pd.DataFrame(
        {
            C.PRODUCT_ID: pg.size().index.to_numpy(np.int64),
            C.CATEGORY: text_or(pg["vendor"].first().reset_index(drop=True), UNKNOWN).to_numpy(),
            C.NAME: text_or(pg["name"].first().reset_index(drop=True), UNKNOWN).to_numpy(),
            C.PRICE: np.maximum(pg["price"].median().to_numpy(), 0.01),
            C.WEIGHT_KG: 0.0,
            C.IS_CONSUMABLE: False,
            C.REPLENISH_DAYS: np.nan,
            C.SUBSCRIBABLE: False,
            C.IN_STOCK: True,
        }
    )
    items = pd.DataFrame(
        {
            C.ORDER_ID: lines[C.ORDER_ID].to_numpy(np.int64),
            C.LINE_NO: (lines.groupby(C.ORDER_ID).cumcount() + 1).to_numpy(np.int64),
            C.PRODUCT_ID: lines["pid"].to_numpy(np.int64),
            C.QUANTITY: lines["qty"].to_numpy(np.int64),
            C.UNIT_PRICE: lines["price"].clip(lower=0).to_numpy(float),
        }
    )
    goods = (lines["qty"] * lines["price"]).groupby(lines[C.ORDER_ID]).sum()
    total = (
        parse_numbers(o["Total"], path, "Total")
        if "Total" in o
        else pd.Series(np.nan, index=o.index)
    )
    discount = (
        parse_numbers(o["Discount Amount"], path, "Discount Amount")
        if "Discount Amount" in o
        else pd.Series(0.0, index=o.index)
    )

    method = col(SHIPPING_METHOD).fillna("").astype(str)
    promised = method.map(promise_from_method)
    if promised.isna().any():
        if promise_days is None:
            rows = list(o.index[promised.isna()])
            raise StoreImportError(
                f"{path}: column {SHIPPING_METHOD!r} states no delivery days for "
                f"{len(rows)} orders (order {o[NAME].iloc[rows[0]]!r}, {rows_text(rows, file_rows=False)} of the "
                "orders); pass --promise-days with the brand's promise"
            )
        report.note(
            f"{int(promised.isna().sum())} orders use the promise of {promise_days} days (--promise-days)"
        )
        promised = promised.fillna(float(promise_days))

    events = _tracking(tracking, order_map) if tracking is not None else None
    if tracking is not None:
        report.inputs.append(str(tracking))
    carrier = method.str.split(r"[(\[]").str[0].str.strip().str.lower()
    if events is not None:
        ev_carrier = events.dropna(subset=["carrier"]).groupby(C.ORDER_ID)["carrier"].first()
        carrier = pd.Series(order_ids).map(ev_carrier).fillna(carrier)
    carrier = text_or(carrier.astype("string"), UNKNOWN).str.lower()
    orders = pd.DataFrame(
        {
            C.ORDER_ID: order_ids,
            C.CUSTOMER_ID: cust_ids,
            C.ORDERED_AT: o_created.to_numpy(),
            C.CHANNEL: np.where(
                col("Source").fillna("").astype(str).str.contains("app|pos", case=False),
                "app",
                "web",
            ),
            C.WAREHOUSE: "main",
            C.ORIGIN_REGION: "main",
            C.DEST_REGION: province.to_numpy(),
            C.DISTANCE_KM: np.nan,
            C.CARRIER: carrier.to_numpy(),
            C.SERVICE_LEVEL: np.where(method.str.contains(EXPRESS), "express", "standard"),
            C.PROMISED_DAYS: promised.to_numpy(np.int64),
            C.PROMISED_DATE: (
                o_created.dt.normalize() + pd.to_timedelta(promised, unit="D")
            ).to_numpy(),
            C.ORDER_VALUE: total.fillna(pd.Series(order_ids).map(goods))
            .clip(lower=0)
            .to_numpy(float),
            C.DISCOUNT: discount.fillna(0.0).clip(lower=0).to_numpy(float),
            C.IS_RENEWAL: False,
            C.SUBSCRIPTION_ID: pd.array([pd.NA] * len(o), dtype="Int64"),
            SOURCE_ROW: source_rows,
        }
    )
    cancelled = parse_times(col(CANCELLED_AT), path, CANCELLED_AT).notna()
    fulfilled = parse_times(col(FULFILLED_AT), path, FULFILLED_AT)
    shipped_at, delivered_at = (
        fulfilled.copy(),
        pd.Series(pd.NaT, index=o.index, dtype="datetime64[ns]"),
    )
    if events is not None:
        moving = events[
            events[C.EVENT_TYPE].isin(["picked_up", "hub_scan", "out_for_delivery", "delivered"])
        ]
        first_scan = pd.Series(order_ids).map(moving.groupby(C.ORDER_ID)[C.EVENT_AT].min())
        shipped_at = shipped_at.fillna(first_scan).where(
            shipped_at.isna() | first_scan.isna(), np.minimum(shipped_at, first_scan)
        )
        done = events[events[C.EVENT_TYPE] == "delivered"].groupby(C.ORDER_ID)[C.EVENT_AT].max()
        delivered_at = pd.Series(order_ids).map(done).astype("datetime64[ns]")
    has_parcel = ~cancelled | shipped_at.notna()
    if (~has_parcel).any():
        report.note(f"{path.name}: {int((~has_parcel).sum())} cancelled orders have no shipment")
    shipments = pd.DataFrame(
        {
            C.SHIPMENT_ID: order_ids,
            C.ORDER_ID: order_ids,
            C.CARRIER: orders[C.CARRIER].to_numpy(),
            C.SERVICE_LEVEL: orders[C.SERVICE_LEVEL].to_numpy(),
            C.SHIPPED_AT: shipped_at.to_numpy(),
            C.DELIVERED_AT: delivered_at.to_numpy(),
            C.STATUS: np.where(delivered_at.notna(), "delivered", "in_transit"),
            C.WEIGHT_KG: 0.0,
            C.SIGNATURE: False,
            C.GPS_DISTANCE_M: np.nan,
        }
    )[has_parcel.to_numpy()].reset_index(drop=True)
    orders, shipments = repair_time_order(orders, shipments, report, path.name)
    tables = {
        C.CUSTOMERS: customers[customers[C.CUSTOMER_ID].isin(orders[C.CUSTOMER_ID])].reset_index(
            drop=True
        ),
        C.PRODUCTS: products,
        C.ORDERS: orders,
        C.ORDER_ITEMS: items[items[C.ORDER_ID].isin(orders[C.ORDER_ID])].reset_index(drop=True),
        C.SHIPMENTS: shipments,
    }
    tables[C.INTERACTIONS] = interactions_from_items(orders, tables[C.ORDER_ITEMS])
    if events is not None:
        ev = events[events[C.ORDER_ID].isin(shipments[C.SHIPMENT_ID])]
        dest = orders.set_index(C.ORDER_ID)[C.DEST_REGION]
        ev = ev.sort_values([C.EVENT_AT, C.ORDER_ID], kind="stable").reset_index(drop=True)
        tables[C.TRACKING_EVENTS] = pd.DataFrame(
            {
                C.EVENT_ID: np.arange(1, len(ev) + 1, dtype=np.int64),
                C.SHIPMENT_ID: ev[C.ORDER_ID].to_numpy(np.int64),
                C.EVENT_AT: ev[C.EVENT_AT].to_numpy(),
                C.EVENT_TYPE: ev[C.EVENT_TYPE].to_numpy(),
                C.LOCATION_REGION: text_or(
                    pd.Series(ev["location"]).astype("string"),
                    ev[C.ORDER_ID].map(dest).astype("string"),
                ).to_numpy(),
            }
        )
    else:
        from ppx.data.stores.build import events_from_shipments

        tables[C.TRACKING_EVENTS] = events_from_shipments(shipments, orders)
    return tables
