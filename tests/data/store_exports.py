"""Tiny brand exports written by tests: an Olist-layout folder and a platform export.

Seeded and small (hundreds of orders over about ten months), with the structure the
models need to learn something: transit time grows with the lane, customers come back,
products have repeat buyers.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pandas as pd

STATES = ("SP", "RJ", "MG", "BA", "RS")
LANE_DAYS = {"SP": 3, "RJ": 5, "MG": 6, "BA": 11, "RS": 9}


def _hex(rng, n: int) -> list[str]:
    return ["".join(rng.choice(list("0123456789abcdef"), 32)) for _ in range(n)]


def write_olist(folder: Path, n_orders: int = 700, n_people: int = 120, seed: int = 0) -> Path:
    """The public Olist layout with ISO timestamps: every table the models can use."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    people = _hex(rng, n_people)
    state_of = dict(zip(people, rng.choice(STATES, n_people), strict=True))
    products = _hex(rng, 40)
    sellers = _hex(rng, 6)
    seller_state = dict(zip(sellers, rng.choice(STATES, 6), strict=True))
    start = pd.Timestamp("2017-01-02")
    t = start + pd.to_timedelta(np.sort(rng.uniform(0, 300, n_orders)), unit="D")
    order_ids, per_order_customer = _hex(rng, n_orders), _hex(rng, n_orders)
    person = rng.choice(people, n_orders)
    orders, customers, items, payments, reviews = [], [], [], [], []
    popular = rng.dirichlet(np.full(len(products), 0.3))
    for i in range(n_orders):
        st = state_of[person[i]]
        transit = max(1.0, rng.lognormal(np.log(LANE_DAYS[st]), 0.35))
        approved = t[i] + pd.Timedelta(hours=float(rng.uniform(0.2, 10)))
        carrier = approved + pd.Timedelta(days=float(rng.uniform(0.5, 2)))
        delivered = carrier + pd.Timedelta(days=transit)
        estimate = (t[i] + pd.Timedelta(days=LANE_DAYS[st] + 10)).normalize()
        open_ = i >= n_orders - 15  # the last orders are still on their way
        fmt = "%Y-%m-%d %H:%M:%S"
        orders.append(
            {
                "order_id": order_ids[i],
                "customer_id": per_order_customer[i],
                "order_status": "shipped" if open_ else "delivered",
                "order_purchase_timestamp": t[i].strftime(fmt),
                "order_approved_at": approved.strftime(fmt),
                "order_delivered_carrier_date": carrier.strftime(fmt),
                "order_delivered_customer_date": "" if open_ else delivered.strftime(fmt),
                "order_estimated_delivery_date": estimate.strftime(fmt),
            }
        )
        customers.append(
            {
                "customer_id": per_order_customer[i],
                "customer_unique_id": person[i],
                "customer_zip_code_prefix": int(rng.integers(1000, 99999)),
                "customer_city": "cidade",
                "customer_state": st,
            }
        )
        total = 0.0
        for line in range(1, int(rng.integers(1, 3)) + 1):
            p = rng.choice(len(products), p=popular)
            seller = sellers[p % len(sellers)]
            price = round(float(20 + 5 * p + rng.uniform(0, 3)), 2)
            total += price
            items.append(
                {
                    "order_id": order_ids[i],
                    "order_item_id": line,
                    "product_id": products[p],
                    "seller_id": seller,
                    "shipping_limit_date": carrier.strftime(fmt),
                    "price": price,
                    "freight_value": 9.5,
                }
            )
        payments.append(
            {
                "order_id": order_ids[i],
                "payment_sequential": 1,
                "payment_type": "credit_card",
                "payment_installments": 1,
                "payment_value": round(total + 9.5, 2),
            }
        )
        if not open_ and rng.random() < 0.6:
            reviews.append(
                {
                    "review_id": _hex(rng, 1)[0],
                    "order_id": order_ids[i],
                    "review_score": int(5 if transit < LANE_DAYS[st] + 2 else 2),
                    "review_comment_title": "",
                    "review_comment_message": "",
                    "review_creation_date": (delivered + pd.Timedelta(days=1)).strftime(fmt),
                    "review_answer_timestamp": (delivered + pd.Timedelta(days=2)).strftime(fmt),
                }
            )
    pd.DataFrame(orders).to_csv(folder / "olist_orders_dataset.csv", index=False)
    pd.DataFrame(customers).to_csv(folder / "olist_customers_dataset.csv", index=False)
    pd.DataFrame(items).to_csv(folder / "olist_order_items_dataset.csv", index=False)
    pd.DataFrame(payments).to_csv(folder / "olist_order_payments_dataset.csv", index=False)
    pd.DataFrame(reviews).to_csv(folder / "olist_order_reviews_dataset.csv", index=False)
    pd.DataFrame(
        {
            "product_id": products,
            "product_category_name": [
                ("cama_mesa_banho", "esporte_lazer")[k % 2] for k in range(40)
            ],
            "product_weight_g": rng.integers(100, 5000, 40),
        }
    ).to_csv(folder / "olist_products_dataset.csv", index=False)
    pd.DataFrame(
        {
            "seller_id": sellers,
            "seller_zip_code_prefix": 1000,
            "seller_city": "x",
            "seller_state": [seller_state[s] for s in sellers],
        }
    ).to_csv(folder / "olist_sellers_dataset.csv", index=False)
    pd.DataFrame(
        {
            "product_category_name": ["cama_mesa_banho", "esporte_lazer"],
            "product_category_name_english": ["bed_bath_table", "sports_leisure"],
        }
    ).to_csv(folder / "product_category_name_translation.csv", index=False)
    return folder


SHOPIFY_COLUMNS = (
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Fulfilled at",
    "Accepts Marketing",
    "Currency",
    "Subtotal",
    "Shipping",
    "Taxes",
    "Total",
    "Discount Code",
    "Discount Amount",
    "Shipping Method",
    "Created at",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
    "Lineitem compare at price",
    "Lineitem sku",
    "Lineitem requires shipping",
    "Lineitem taxable",
    "Lineitem fulfillment status",
    "Billing Name",
    "Shipping Name",
    "Shipping Address1",
    "Shipping City",
    "Shipping Zip",
    "Shipping Province",
    "Shipping Country",
    "Cancelled at",
    "Vendor",
    "Id",
)
PROVINCES = {"ON": 2, "QC": 3, "BC": 6, "AB": 4, "NS": 7}
CARRIERS = ("Canada Post", "Purolator")


def write_shopify(
    folder: Path, n_orders: int = 700, n_customers: int = 110, seed: int = 0
) -> tuple[Path, Path]:
    """A platform orders export (semicolon-delimited, Windows-1252) and carrier scans."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    emails = [f"shopper{i}@example.com" for i in range(n_customers)]
    names = [f"Zoë Client {i}" for i in range(n_customers)]  # a non-ASCII name
    prov = rng.choice(list(PROVINCES), n_customers)
    consent = rng.random(n_customers) < 0.6
    skus = [f"SKU-{k:03d}" for k in range(25)]
    popular = rng.dirichlet(np.full(len(skus), 0.3))
    t = pd.Timestamp("2024-01-03") + pd.to_timedelta(
        np.sort(rng.uniform(0, 300, n_orders)), unit="D"
    )
    rows, scans = [], []
    for i in range(n_orders):
        c = int(rng.integers(n_customers))
        express = rng.random() < 0.25
        method = "Express (1-2 business days)" if express else "Standard (3-5 business days)"
        carrier = CARRIERS[int(express)]
        transit = max(0.5, rng.lognormal(np.log(PROVINCES[prov[c]] * (0.5 if express else 1)), 0.3))
        fulfilled = t[i] + pd.Timedelta(hours=float(rng.uniform(3, 30)))
        delivered = fulfilled + pd.Timedelta(days=transit)
        is_open = i >= n_orders - 15
        name = f"#{1001 + i}"
        lines = int(rng.integers(1, 4))
        picks = rng.choice(len(skus), lines, replace=False, p=popular)
        subtotal = sum(10.0 + 3 * p for p in picks)
        for j, p in enumerate(picks):
            first = j == 0
            rows.append(
                {
                    "Name": name,
                    "Email": emails[c] if first else "",
                    "Financial Status": "paid" if first else "",
                    "Paid at": (t[i].strftime("%Y-%m-%d %H:%M:%S -0500") if first else ""),
                    "Fulfillment Status": "fulfilled" if first else "",
                    "Fulfilled at": fulfilled.strftime("%Y-%m-%d %H:%M:%S -0500") if first else "",
                    "Accepts Marketing": ("yes" if consent[c] else "no") if first else "",
                    "Currency": "CAD" if first else "",
                    "Subtotal": f"{subtotal:.2f}" if first else "",
                    "Shipping": "8.00" if first else "",
                    "Taxes": "0.00" if first else "",
                    "Total": f"{subtotal + 8:.2f}" if first else "",
                    "Discount Code": "",
                    "Discount Amount": "0.00" if first else "",
                    "Shipping Method": method if first else "",
                    "Created at": t[i].strftime("%Y-%m-%d %H:%M:%S -0500"),
                    "Lineitem quantity": int(rng.integers(1, 3)),
                    "Lineitem name": f"Coffee blend {p}",
                    "Lineitem price": f"{10.0 + 3 * p:.2f}",
                    "Lineitem compare at price": "",
                    "Lineitem sku": skus[p],
                    "Lineitem requires shipping": "true",
                    "Lineitem taxable": "true",
                    "Lineitem fulfillment status": "fulfilled",
                    "Billing Name": names[c] if first else "",
                    "Shipping Name": names[c] if first else "",
                    "Shipping Address1": f"{c} Main St" if first else "",
                    "Shipping City": "Town" if first else "",
                    "Shipping Zip": "A1A 1A1" if first else "",
                    "Shipping Province": prov[c] if first else "",
                    "Shipping Country": "CA" if first else "",
                    "Cancelled at": "",
                    "Vendor": "Roaster",
                    "Id": 5000 + i if first else "",
                }
            )
        steps = [
            ("Label created", fulfilled - pd.Timedelta(hours=1), "ON"),
            ("Picked up", fulfilled, "ON"),
            ("In transit - arrived at facility", fulfilled + (delivered - fulfilled) * 0.5, "ON"),
        ]
        if is_open:
            steps = steps[:2]
        else:
            steps += [
                ("Out for delivery", delivered - pd.Timedelta(hours=4), prov[c]),
                ("Delivered", delivered, prov[c]),
            ]
        for status, at, where in steps:
            scans.append(
                {
                    "Order": name,
                    "Tracking Number": f"TRK{i:06d}",
                    "Carrier": carrier,
                    "Event Time": at.strftime("%Y-%m-%dT%H:%M:%S-05:00"),
                    "Status": status,
                    "Location": where,
                }
            )
    orders_path = folder / "orders_export.csv"
    with orders_path.open("w", newline="", encoding="cp1252") as fh:
        w = csv.DictWriter(fh, fieldnames=SHOPIFY_COLUMNS, delimiter=";")
        w.writeheader()
        w.writerows(rows)
    tracking_path = folder / "tracking_events.csv"
    pd.DataFrame(scans).to_csv(tracking_path, index=False)
    return orders_path, tracking_path
