"""What the fraud model's inputs mean, for reports and reason codes (see ppx.explain.dictionary).

Money and GPS distances enter as ``log(1 + x)`` and are shown as the amount; the product
category and the return reason are one-hot groups shown as one field ("return reason:
damaged"); the return-lag bins (which part of the 30-day window, for durable or other
goods) are folded onto the return lag itself, in days.
"""

from __future__ import annotations

from ppx.data import columns as C
from ppx.explain.dictionary import Column, Field, build
from ppx.features import fraud as F

_F = Field
FIELDS = (
    _F("is_claim", "a delivery claim (not a return)", kind="flag"),
    _F("amount", "amount asked back", kind="money"),
    _F("order_value", "order value", kind="money"),
    _F("discount_share", "discount on the order", kind="share"),
    _F("account_age_days", "account age", unit="days", decimals=0),
    _F("order_account_age_days", "account age when the order was placed", unit="days", decimals=0),
    _F("days_since_order", "time since the order", unit="days", decimals=0),
    _F("late_delivery", "the order arrived late", kind="flag"),
    _F("n_orders", "orders so far", kind="count"),
    _F("spend", "spend so far", kind="money"),
    _F("n_orders_90d", "orders in the last 90 days", kind="count"),
    _F("n_items_delivered", "items delivered so far", kind="count"),
    _F("n_returns", "returns so far", kind="count"),
    _F("return_rate", "share of items returned", kind="share"),
    _F("n_returns_90d", "returns in the last 90 days", kind="count"),
    _F("n_hv_returns", "returns of high-value items", kind="count"),
    _F("hv_return_rate", "share of high-value items returned", kind="share"),
    _F("n_late_window_returns", "returns late in the return window", kind="count"),
    _F("late_window_share", "share of returns made late in the window", kind="share"),
    _F("mean_return_lag", "average time from delivery to return", unit="days", decimals=1),
    _F("n_claims", "delivery claims so far", kind="count"),
    _F("claim_rate", "claims per order", kind="share"),
    _F("n_unexplained_claims", "claims the tracking does not explain", kind="count"),
    _F("n_fast_claims", "claims filed within hours of delivery", kind="count"),
    _F("n_labels_known", "past requests already investigated", kind="count"),
    _F("own_fraud_known", "past requests confirmed as fraud", kind="count"),
    _F("premium_item_share", "share of premium items bought", kind="share"),
    _F("mean_item_price", "typical price of items bought", kind="money"),
    _F("n_durable_items", "durable items bought (equipment, merchandise)", kind="count"),
    _F("durable_return_rate", "share of durable items returned", kind="share"),
    _F("n_durable_kept", "durable items kept", kind="count"),
    _F("item_price", "price of the item", kind="money"),
    _F("refund_to_price", "refund asked, as a multiple of the price", kind="ratio"),
    _F("category_return_rate", "how often this category is returned", kind="share"),
    _F("product_return_rate", "how often this product is returned", kind="share"),
    _F("category", "product category", kind="category"),
    _F("return_lag_days", "time from delivery to return", unit="days", decimals=1),
    _F("late_window_return", "returned late in the return window", kind="flag"),
    _F("late_window_durable", "a durable item returned late in the window", kind="flag"),
    _F("at_return_deadline", "returned at the deadline", kind="flag"),
    _F("high_value_item", "a high-value item", kind="flag"),
    _F("reason", "return reason", kind="category"),
    _F("late_window_history_durable", "earlier late returns, for a durable item", kind="count"),
    _F("early_high_value_return", "a pricey item returned within 10 days", kind="flag"),
    _F("delivered_scan", "tracking shows a delivery scan", kind="flag"),
    _F("signature", "delivery was signed for", kind="flag"),
    _F("gps_distance", "delivery scan's distance from the address", unit="m", decimals=0),
    _F("gps_far", "delivery scan far from the address", kind="flag"),
    _F("hours_since_delivery", "time from delivery to claim", unit="hours", decimals=0),
    _F("exception_scan", "tracking shows an exception", kind="flag"),
    _F("claim_not_received", "claims the parcel never arrived", kind="flag"),
    _F("own_fraud_late_returns", "confirmed fraudulent late returns", kind="count"),
    _F("own_fraud_early_returns", "confirmed fraudulent early returns", kind="count"),
    _F("own_fraud_claims", "confirmed fraudulent claims", kind="count"),
    _F("known_wardrobe_match", "matches this account's confirmed wardrobing", kind="flag"),
    _F("known_ring_match", "matches this account's confirmed ring pattern", kind="flag"),
    _F("n_pending_returns", "returns still under investigation", kind="count"),
    _F("n_pending_late_durable", "late durable returns under investigation", kind="count"),
    _F("degree", "accounts sharing a device, card, address, e-mail or phone", kind="count"),
    _F("n_shared_device", "accounts sharing a device", kind="count"),
    _F("n_shared_payment", "accounts sharing a payment card", kind="count"),
    _F("n_shared_address", "accounts sharing an address", kind="count"),
    _F("n_shared_email", "accounts sharing an e-mail", kind="count"),
    _F("n_shared_phone", "accounts sharing a phone", kind="count"),
    _F("component_size", "accounts linked through shared details", kind="count"),
    _F("nb_fraud_accounts", "linked accounts confirmed as fraud", kind="count"),
    _F("nb_fraud_rate", "share of linked accounts confirmed as fraud", kind="share"),
    _F("component_fraud_accounts", "confirmed fraud accounts in the linked group", kind="count"),
    _F("nb_burst", "linked accounts' requests in the last days", kind="count"),
    _F("nb_returns", "linked accounts' returns", kind="count"),
    _F("nb_hv_returns", "linked accounts' high-value returns", kind="count"),
    _F("nb_claims", "linked accounts' claims", kind="count"),
    _F("nb_unexplained_claims", "linked accounts' unexplained claims", kind="count"),
    _F("nb_fraud_labels", "linked accounts' confirmed fraud cases", kind="count"),
)

_LOGS = {
    "amount_log": "amount",
    "order_value_log": "order_value",
    "spend_log": "spend",
    "mean_item_price_log": "mean_item_price",
    "item_price_log": "item_price",
    "gps_distance_log": "gps_distance",
}


def _columns() -> list[Column]:
    cols = [Column(k, v, "log1p") for k, v in _LOGS.items()]
    cols += [Column(f"cat_{c}", "category", "onehot", c) for c in C.CATEGORIES]
    cols += [
        Column(f"reason_{r}", "reason", "onehot", r.replace("_", " ")) for r in C.RETURN_REASONS
    ]
    # the lag bins say which part of the window the return fell in: the lag itself
    cols += [Column(c, "return_lag_days") for c in (*F.LAG_BIN_FEATURES, "lag_x_durable")]
    named = {c.feature for c in cols}
    fields = {f.name for f in FIELDS}
    cols += [Column(n, n) for n in F.FEATURE_NAMES if n not in named and n in fields]
    return cols


FEATURES = build(FIELDS, _columns(), segments={"is_claim": (), "high_value_item": ()})
