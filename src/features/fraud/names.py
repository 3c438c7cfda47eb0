"""Request columns, thresholds and the feature names of the fraud models."""

from __future__ import annotations

import numpy as np

from ppx.data import columns as C
from ppx.features.identity import (
    ID_KINDS,
)

# --- request columns (what a caller sends; also what the offline builders produce) -----
KIND = "kind"
RETURN, CLAIM = "return", "claim"
KINDS = (RETURN, CLAIM)
EXCEPTION_SCAN = "exception_scan"
LABEL_AT = "label_at"
REQUEST_ID = "request_id"

#: Columns every request must carry.
REQUIRED_COLUMNS = (KIND, C.CUSTOMER_ID, C.REQUESTED_AT, C.AMOUNT)
#: Optional request columns (missing -> neutral defaults).
OPTIONAL_COLUMNS = (
    C.ORDER_ID,
    C.ORDERED_AT,
    C.ORDER_VALUE,
    C.DISCOUNT,
    C.PROMISED_DATE,
    C.DELIVERED_AT,
    C.PRODUCT_ID,
    C.REASON,
    C.CLAIM_TYPE,
    C.SIGNATURE,
    C.GPS_DISTANCE_M,
    EXCEPTION_SCAN,
)
#: Identity of an account the history has not seen (hashed on arrival, never stored raw).
IDENTITY_COLUMNS = (C.SIGNUP_AT, C.REGION, *ID_KINDS)

HIGH_VALUE = 40.0  # refunds above this are "high value" (rings only return pricey items)
LATE_WINDOW_DAYS = 18.0  # returns filed this late after delivery: wardrobing signature
RING_WINDOW_DAYS = 10.0  # pricey items returned this soon: the ring pattern
# The return window closes 29.5 days after delivery; honest customers who return late
# file at the last moment, so "at the deadline" (within a minute) is its own signal.
RETURN_DEADLINE_DAYS = 29.5
DEADLINE_SLACK_DAYS = 60.0 / 86_400
PREMIUM_PRICE = 60.0  # items above this are the premium tier of the catalogue
DURABLE_CATEGORIES = ("equipment", "merch")  # goods that can be used and sent back
FAR_GPS_M = 200.0  # delivered scan this far from the address: likely misdelivery
BURST_DAYS = 200.0  # neighbours opened within this many days of each other
SHIFT = np.int64(1) << np.int64(33)  # composite (group, second) keys for as-of searches

ID_SHORT = {
    C.DEVICE_ID: "device",
    C.PAYMENT_FINGERPRINT: "payment",
    C.ADDRESS: "address",
    C.EMAIL: "email",
    C.PHONE: "phone",
}

ORDER_FEATURES = [
    "is_claim",
    "amount_log",
    "order_value_log",
    "discount_share",
    "account_age_days",
    "order_account_age_days",
    "days_since_order",
    "late_delivery",
]
HISTORY_FEATURES = [
    "n_orders",
    "spend_log",
    "n_orders_90d",
    "n_items_delivered",
    "n_returns",
    "return_rate",
    "n_returns_90d",
    "n_hv_returns",
    "hv_return_rate",
    "n_late_window_returns",
    "late_window_share",
    "mean_return_lag",
    "n_claims",
    "claim_rate",
    "n_unexplained_claims",
    "n_fast_claims",
    "n_labels_known",
    "own_fraud_known",
    "premium_item_share",
    "mean_item_price_log",
    "n_durable_items",
    "durable_return_rate",
    "n_durable_kept",
]
#: Once an account's fraud is confirmed its *kind* says which requests are
#: likely fraud again: a wardrober's confirmed late returns of durable goods, a ring
#: member's confirmed early returns of pricey items or claims. ``*_match`` crosses the
#: known kind with the request's own pattern. ``n_pending_*``: requests filed within
#: the label delay, whose investigation has not finished (a wardrober sending back
#: several items of one order late shows it before the first label arrives).
KNOWN_FRAUD_FEATURES = [
    "own_fraud_late_returns",
    "own_fraud_early_returns",
    "own_fraud_claims",
    "known_wardrobe_match",
    "known_ring_match",
    "n_pending_returns",
    "n_pending_late_durable",
]
ITEM_FEATURES = [
    "item_price_log",
    "refund_to_price",
    "category_return_rate",
    "product_return_rate",
    *[f"cat_{c}" for c in C.CATEGORIES],
]
#: Return-lag bins (days after delivery) crossed with durable (equipment, merch) vs
#: other goods: the network sees "which part of the 30-day window, for what kind of
#: item" directly instead of having to carve it out of a raw lag. There is
#: an edge at half a day (no ring return comes sooner) and the last bin stops short of
#: the deadline, which has its own flag (``at_return_deadline``).
LAG_BINS = (0, 0.5, 1, 3, 7, 10, 14, 18, 22, 26, 29)
LAG_BIN_FEATURES = [
    f"lag_{a}_{b}d_{g}"
    for a, b in zip(LAG_BINS, (*LAG_BINS[1:], "deadline"), strict=True)
    for g in ("durable", "other")
]
RETURN_FEATURES = [
    "return_lag_days",
    "late_window_return",
    "late_window_durable",
    "at_return_deadline",
    "high_value_item",
    *[f"reason_{r}" for r in C.RETURN_REASONS],
    *LAG_BIN_FEATURES,
    "lag_x_durable",  # lag in days for durable goods, 0 otherwise
    "late_window_history_durable",  # earlier late-window returns x this item is durable
    "early_high_value_return",  # a pricey item returned within 10 days (ring pattern)
]
CLAIM_FEATURES = [
    "delivered_scan",
    "signature",
    "gps_distance_log",
    "gps_far",
    "hours_since_delivery",
    "exception_scan",
    "claim_not_received",
]
LINKAGE_FEATURES = [
    "degree",
    *[f"n_shared_{ID_SHORT[k]}" for k in ID_KINDS],
    "component_size",
    "nb_fraud_accounts",
    "nb_fraud_rate",
    "component_fraud_accounts",
    "nb_burst",
    "nb_returns",
    "nb_hv_returns",
    "nb_claims",
    "nb_unexplained_claims",
    "nb_fraud_labels",
]
#: Extra linkage features (``fraud_features(..., extra_linkage=True)``):
#: edges other than the (often chance) shared address, per-kind neighbour fraud,
#: two-hop exposure, neighbours' claim behaviour, component fraud share. They did not
#: raise validation PR AUC (``python -m ppx.models.fraud.ablation``), so the model
#: does not use them; see docs/benchmarks/fraud.md.
EXTRA_LINKAGE_FEATURES = [
    "strong_degree",
    "nb_strong_fraud_accounts",
    "nb_device_fraud",
    "nb_payment_fraud",
    "hop2_accounts",
    "hop2_fraud_accounts",
    "nb_claim_rate",
    "nb_fast_claims",
    "nb_fraud_label_rate",
    "component_fraud_share",
]
#: Identifier kinds that rarely collide by chance (an address is shared by households
#: and, in the synthetic world, by random house x street collisions).
STRONG_KINDS = (C.DEVICE_ID, C.PAYMENT_FINGERPRINT, C.EMAIL, C.PHONE)
BASE_FEATURES = (
    ORDER_FEATURES
    + HISTORY_FEATURES
    + ITEM_FEATURES
    + RETURN_FEATURES
    + CLAIM_FEATURES
    + KNOWN_FRAUD_FEATURES
)
FEATURE_NAMES = BASE_FEATURES + LINKAGE_FEATURES
