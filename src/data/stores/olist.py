"""The public Olist layout (Kaggle ``olistbr/brazilian-ecommerce``) as a store.

Reads every table the layout has - orders, customers, items, products, sellers, payments,
reviews, the category translation - in the full public form (ISO timestamps) or the
partial copy (``M/D/YYYY H:MM``, other tables covering about 10 % of the orders). What the
partial tables do not cover becomes ``unknown`` (a customer's state, a product's category),
never a guess. Olist is one marketplace "carrier"; the seller's state plays the warehouse
and origin, the customer's state the destination; Olist's own estimated delivery date is
the promise. Olist has no carrier event feed, so tracking events are the two scans its
orders table records (hand-over to the carrier, delivery). There is no consent field, so
every customer is opted out of marketing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.adapters import olist as adapter
from ppx.data.stores.build import (
    SOURCE_ROW,
    UNKNOWN,
    ImportReport,
    dense_ids,
    events_from_shipments,
    interactions_from_items,
    repair_time_order,
    text_or,
)
from ppx.data.stores.read import (
    StoreImportError,
    parse_numbers,
    parse_times,
    read_export,
    require_columns,
)

PAYMENTS_FILE = "olist_order_payments_dataset.csv"
REVIEWS_FILE = "olist_order_reviews_dataset.csv"
TRANSLATION_FILE = "product_category_name_translation.csv"
#: Olist order statuses whose parcel never left (no shipment row)
NOT_SHIPPED = ("canceled", "unavailable")


def looks_like_olist(folder: Path) -> bool:
    return (folder / adapter.ORDERS_FILE).is_file()


def _optional(folder: Path, name: str) -> pd.DataFrame | None:
    return read_export(folder / name) if (folder / name).is_file() else None


def import_olist(folder: str | Path, report: ImportReport) -> dict[str, pd.DataFrame]:
    """Canonical tables from an Olist folder (see the module docstring)."""
    folder = Path(folder)
    path = folder / adapter.ORDERS_FILE
    o = read_export(path)
    require_columns(o, path, ("order_id", "customer_id", "order_status", *adapter.TIME_COLUMNS))
    dup = o["order_id"].duplicated()
    if dup.any():
        raise StoreImportError(
            f"{path}: column 'order_id' repeats at rows {list(o.index[dup][:5])}"
        )
    times = {
        c: parse_times(o[c], path, c, nullable=c != "order_purchase_timestamp")
        for c in adapter.TIME_COLUMNS
    }
    missing_promise = times["order_estimated_delivery_date"].isna()
    if missing_promise.any():
        report.note(
            f"{path}: {int(missing_promise.sum())} orders without an estimated delivery date "
            "left out (the promise is what delivery is measured against)"
        )
    keep = ~missing_promise.to_numpy()
    source_rows = o.index[keep].to_numpy()
    o = o[keep].reset_index(drop=True)
    times = {c: t[keep].reset_index(drop=True) for c, t in times.items()}

    # customers: Olist's customer_id is per order; customer_unique_id is the person
    cpath = folder / adapter.CUSTOMERS_FILE
    cust = _optional(folder, adapter.CUSTOMERS_FILE)
    if cust is not None:
        require_columns(cust, cpath, ("customer_id", "customer_unique_id", "customer_state"))
        cust = cust.drop_duplicates("customer_id").set_index("customer_id")
        person = o["customer_id"].map(cust["customer_unique_id"]).fillna(o["customer_id"])
        state = o["customer_id"].map(cust["customer_state"])
        zip_city = o["customer_id"].map(
            cust.get("customer_zip_code_prefix", pd.Series(dtype=str)).astype("string")
            + " "
            + cust.get("customer_city", pd.Series(dtype=str)).astype("string")
        )
    else:
        person, state, zip_city = o["customer_id"], pd.Series(np.nan, index=o.index), None
    covered = float(state.notna().mean())
    if covered < 1:
        report.note(f"{cpath.name}: {covered:.0%} of orders join to a customer row; others unknown")
    cust_ids, cust_map = dense_ids(person)
    ordered_at = times["order_purchase_timestamp"]
    first = pd.DataFrame({"k": person, "t": ordered_at, "s": state, "a": zip_city})
    first = first.sort_values("t", kind="stable").groupby("k", sort=False).first()
    first = first.loc[cust_map.index]
    customers = pd.DataFrame(
        {
            C.CUSTOMER_ID: cust_map.to_numpy(np.int64),
            C.SIGNUP_AT: first["t"].to_numpy(),
            C.NAME: ("olist customer " + first.index.astype(str)).to_numpy(),
            C.EMAIL: (first.index.astype(str) + "@customers.olist.invalid").to_numpy(),
            C.PHONE: None,
            C.ADDRESS: text_or(pd.Series(first["a"].to_numpy()), UNKNOWN).to_numpy(),
            C.REGION: text_or(pd.Series(first["s"].to_numpy()), UNKNOWN).to_numpy(),
            C.DEVICE_ID: None,
            C.PAYMENT_FINGERPRINT: None,
            C.BIRTH_DATE: pd.NaT,
            C.EMAIL_OPT_IN: False,
            C.SMS_OPT_IN: False,
            C.PUSH_OPT_IN: False,
            C.REFERRED_BY: pd.array([pd.NA] * len(cust_map), dtype="Int64"),
        }
    )

    # items, products and sellers (partial in the copy)
    order_ids, order_map = dense_ids(o["order_id"])
    items_raw = _optional(folder, adapter.ITEMS_FILE)
    products_raw = _optional(folder, adapter.PRODUCTS_FILE)
    sellers = _optional(folder, adapter.SELLERS_FILE)
    translation = _optional(folder, TRANSLATION_FILE)
    seller_state = pd.Series(np.nan, index=o.index, dtype=object)
    weight = pd.Series(np.nan, index=o.index)
    items = pd.DataFrame(columns=[C.ORDER_ID, C.LINE_NO, C.PRODUCT_ID, C.QUANTITY, C.UNIT_PRICE])
    products = pd.DataFrame()
    if items_raw is not None:
        ipath = folder / adapter.ITEMS_FILE
        require_columns(items_raw, ipath, ("order_id", "order_item_id", "product_id", "price"))
        it = items_raw[items_raw["order_id"].isin(order_map.index)].copy()
        it["price_f"] = parse_numbers(it["price"], ipath, "price", nullable=False)
        it["line"] = parse_numbers(it["order_item_id"], ipath, "order_item_id", nullable=False)
        prod_ids, prod_map = dense_ids(it["product_id"])
        it["pid"] = prod_ids
        category = pd.Series(UNKNOWN, index=prod_map.index, dtype=object)
        weight_kg = pd.Series(np.nan, index=prod_map.index)
        if products_raw is not None:
            ppath = folder / adapter.PRODUCTS_FILE
            p = products_raw.drop_duplicates("product_id").set_index("product_id")
            cat = p.get("product_category_name")
            if cat is not None and translation is not None:
                tr = translation.set_index(translation.columns[0])[translation.columns[1]]
                cat = cat.map(tr).fillna(cat)
            if cat is not None:
                category = text_or(
                    pd.Series(prod_map.index.map(cat), index=prod_map.index), UNKNOWN
                )
            if "product_weight_g" in p:
                w = parse_numbers(p["product_weight_g"], ppath, "product_weight_g") / 1000.0
                weight_kg = pd.Series(prod_map.index.map(w), index=prod_map.index, dtype=float)
        price = it.groupby("pid")["price_f"].median()
        products = pd.DataFrame(
            {
                C.PRODUCT_ID: prod_map.to_numpy(np.int64),
                C.CATEGORY: category.to_numpy(),
                C.NAME: ("olist product " + prod_map.index.astype(str)).to_numpy(),
                C.PRICE: np.maximum(price.reindex(prod_map.to_numpy()).to_numpy(), 0.01),
                C.WEIGHT_KG: weight_kg.fillna(0.0).to_numpy(),
                C.IS_CONSUMABLE: False,
                C.REPLENISH_DAYS: np.nan,
                C.SUBSCRIBABLE: False,
                C.IN_STOCK: True,
            }
        )
        it[C.ORDER_ID] = it["order_id"].map(order_map).astype(np.int64)
        it = it.sort_values([C.ORDER_ID, "line"], kind="stable")
        # Olist lists one row per unit; identical units of an order become one line
        grouped = (
            it.groupby([C.ORDER_ID, "pid"], sort=False)
            .agg(quantity=("pid", "size"), unit_price=("price_f", "first"))
            .reset_index()
        )
        grouped[C.LINE_NO] = grouped.groupby(C.ORDER_ID).cumcount() + 1
        items = pd.DataFrame(
            {
                C.ORDER_ID: grouped[C.ORDER_ID].to_numpy(np.int64),
                C.LINE_NO: grouped[C.LINE_NO].to_numpy(np.int64),
                C.PRODUCT_ID: grouped["pid"].to_numpy(np.int64),
                C.QUANTITY: grouped["quantity"].to_numpy(np.int64),
                C.UNIT_PRICE: grouped["unit_price"].to_numpy(float),
            }
        )
        if sellers is not None and "seller_id" in it:
            ss = sellers.drop_duplicates("seller_id").set_index("seller_id")["seller_state"]
            it["ss"] = it["seller_id"].map(ss)
            seller_state = o["order_id"].map(it.groupby("order_id")["ss"].first())
        order_w = (
            it.assign(w=it["product_id"].map(weight_kg)).groupby("order_id")["w"].sum(min_count=1)
        )
        weight = o["order_id"].map(order_w)
        goods = it.groupby("order_id")["price_f"].sum()
    else:
        goods = pd.Series(dtype=float)
    pay = _optional(folder, PAYMENTS_FILE)
    if pay is not None:
        ppath = folder / PAYMENTS_FILE
        pay["v"] = parse_numbers(pay["payment_value"], ppath, "payment_value")
        paid = pay.groupby("order_id")["v"].sum()
        value = o["order_id"].map(paid).fillna(o["order_id"].map(goods))
    else:
        value = o["order_id"].map(goods)
    if value.isna().any():
        report.note(f"{int(value.isna().sum())} orders have no payment or item rows; order value 0")
    seller = text_or(seller_state, UNKNOWN)
    estimated = times["order_estimated_delivery_date"]
    promised_days = (estimated.dt.normalize() - ordered_at.dt.normalize()).dt.days
    orders = pd.DataFrame(
        {
            C.ORDER_ID: order_ids,
            C.CUSTOMER_ID: cust_ids,
            C.ORDERED_AT: ordered_at.to_numpy(),
            C.CHANNEL: "web",
            C.WAREHOUSE: seller.to_numpy(),
            C.ORIGIN_REGION: seller.to_numpy(),
            C.DEST_REGION: text_or(state, UNKNOWN).to_numpy(),
            C.DISTANCE_KM: np.nan,
            C.CARRIER: adapter.CARRIER,
            C.SERVICE_LEVEL: "standard",
            C.PROMISED_DAYS: promised_days.clip(lower=0).to_numpy(np.int64),
            C.PROMISED_DATE: estimated.dt.normalize().to_numpy(),
            C.ORDER_VALUE: value.fillna(0.0).clip(lower=0).to_numpy(float),
            C.DISCOUNT: 0.0,
            C.IS_RENEWAL: False,
            C.SUBSCRIPTION_ID: pd.array([pd.NA] * len(o), dtype="Int64"),
            SOURCE_ROW: source_rows,
        }
    )
    status = o["order_status"].astype(str).str.strip().str.lower()
    shipped = ~status.isin(NOT_SHIPPED) | times["order_delivered_carrier_date"].notna()
    delivered_at = times["order_delivered_customer_date"]
    ship_status = np.where(
        delivered_at.notna() | (status == "delivered"),
        "delivered",
        np.where(status.isin(NOT_SHIPPED), "lost", "in_transit"),
    )
    shipments = pd.DataFrame(
        {
            C.SHIPMENT_ID: order_ids,
            C.ORDER_ID: order_ids,
            C.CARRIER: adapter.CARRIER,
            C.SERVICE_LEVEL: "standard",
            C.SHIPPED_AT: times["order_delivered_carrier_date"].to_numpy(),
            C.DELIVERED_AT: delivered_at.to_numpy(),
            C.STATUS: ship_status,
            C.WEIGHT_KG: weight.fillna(0.0).to_numpy(float),
            C.SIGNATURE: False,
            C.GPS_DISTANCE_M: np.nan,
        }
    )[shipped.to_numpy()].reset_index(drop=True)
    n_cancel = int((~shipped).sum())
    if n_cancel:
        report.note(f"{path.name}: {n_cancel} cancelled or unavailable orders have no shipment")
    orders, shipments = repair_time_order(orders, shipments, report, path.name)
    items = items[items[C.ORDER_ID].isin(orders[C.ORDER_ID])].reset_index(drop=True)
    customers = customers[customers[C.CUSTOMER_ID].isin(orders[C.CUSTOMER_ID])]
    tables = {
        C.CUSTOMERS: customers.reset_index(drop=True),
        C.ORDERS: orders,
        C.SHIPMENTS: shipments,
        C.TRACKING_EVENTS: events_from_shipments(shipments, orders),
    }
    if len(products):
        used = products[C.PRODUCT_ID].isin(items[C.PRODUCT_ID])
        tables[C.PRODUCTS] = products[used].reset_index(drop=True)
        tables[C.ORDER_ITEMS] = items
        tables[C.INTERACTIONS] = interactions_from_items(orders, items)
    else:
        raise StoreImportError(
            f"{folder}: {adapter.ITEMS_FILE} is missing; products and order lines are required"
        )
    reviews = _optional(folder, REVIEWS_FILE)
    if reviews is not None:
        tables[C.REVIEWS] = _reviews(reviews, folder / REVIEWS_FILE, order_map, orders, items)
    return tables


def _reviews(raw, path, order_map, orders, items) -> pd.DataFrame:
    require_columns(raw, path, ("review_id", "order_id", "review_score", "review_creation_date"))
    r = raw[raw["order_id"].isin(order_map.index)].copy()
    r[C.ORDER_ID] = r["order_id"].map(order_map).astype(np.int64)
    first_item = items.sort_values(C.LINE_NO).groupby(C.ORDER_ID)[C.PRODUCT_ID].first()
    r[C.PRODUCT_ID] = r[C.ORDER_ID].map(first_item)
    r = r[r[C.PRODUCT_ID].notna() & r[C.ORDER_ID].isin(orders[C.ORDER_ID])]
    score = parse_numbers(r["review_score"], path, "review_score", nullable=False)
    created = parse_times(r["review_creation_date"], path, "review_creation_date", nullable=False)
    cust = orders.set_index(C.ORDER_ID)[C.CUSTOMER_ID]
    return pd.DataFrame(
        {
            C.REVIEW_ID: np.arange(1, len(r) + 1, dtype=np.int64),
            C.CUSTOMER_ID: r[C.ORDER_ID].map(cust).to_numpy(np.int64),
            C.PRODUCT_ID: r[C.PRODUCT_ID].to_numpy(np.int64),
            C.ORDER_ID: r[C.ORDER_ID].to_numpy(np.int64),
            C.CREATED_AT: created.to_numpy(),
            C.RATING: score.round().clip(1, 5).to_numpy(np.int64),
        }
    )
