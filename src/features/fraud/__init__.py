"""Point-in-time features for return-fraud and claim-fraud scoring, with account linkage.

One function, :func:`fraud_features`, turns raw request rows (one return or claim
request per row, the same columns the served model receives) plus a
:class:`FraudHistory` into a numeric frame. Every aggregate is computed **as of the
request time**: only events strictly before it, and only fraud labels whose
investigation had finished before it (``label_at = request time + label delay``).
Offline the history is built from the canonical tables; online it is the snapshot
logged with the model, so the served features equal the training features. The
request-independent part (sorted as-of indexes, category codes, first-fraud times) is
a :class:`FraudHistoryIndex`: built per call offline, once at load by the served scorer.

Feature families (names in :data:`FEATURE_NAMES`):

* order and request facts: amount, order value, discount share, account age, lateness;
* customer history: return and claim rates, tenure, spend, high-value returns, the
  wardrobing signature (returns filed late in the 30-day window), "unexplained" claims
  (the parcel had a delivered scan within 200 m), own confirmed fraud known so far;
* item and category return base rates as of the request;
* delivery evidence for claims: delivered scan, signature, GPS distance, hours from
  the delivered scan to the claim, carrier exception;
* linkage: accounts joined by a shared hashed device, payment fingerprint, address,
  normalised e-mail or phone (``ppx.features.identity``). Degree and per-identifier
  counts come from a ``scipy.sparse`` incidence product; component size and the number
  of flagged accounts in the component come from a time-ordered sweep with
  ``networkx.utils.UnionFind`` so a component only contains accounts that existed,
  and flags that were known, before the request. The requesting account's own labels
  are never part of a neighbour feature.

Modules: ``names`` (request columns, thresholds, feature names), ``requests`` (offline
request rows), ``validation``, ``history`` and ``asof`` (what the features read),
``index`` (its request-independent part), ``linkage`` (the identity graph) and
``features`` (the feature function).
"""

from ppx.features.fraud.asof import AsOf, to_seconds
from ppx.features.fraud.features import fraud_features
from ppx.features.fraud.history import FraudHistory, build_history
from ppx.features.fraud.index import FraudHistoryIndex
from ppx.features.fraud.linkage import LinkageGraph, linkage_edges, linkage_features
from ppx.features.fraud.names import (
    BASE_FEATURES,
    BURST_DAYS,
    CLAIM,
    CLAIM_FEATURES,
    DEADLINE_SLACK_DAYS,
    DURABLE_CATEGORIES,
    EXCEPTION_SCAN,
    EXTRA_LINKAGE_FEATURES,
    FAR_GPS_M,
    FEATURE_NAMES,
    HIGH_VALUE,
    HISTORY_FEATURES,
    ID_KINDS,
    ID_SHORT,
    IDENTITY_COLUMNS,
    ITEM_FEATURES,
    KIND,
    KINDS,
    KNOWN_FRAUD_FEATURES,
    LABEL_AT,
    LAG_BIN_FEATURES,
    LAG_BINS,
    LATE_WINDOW_DAYS,
    LINKAGE_FEATURES,
    OPTIONAL_COLUMNS,
    ORDER_FEATURES,
    PREMIUM_PRICE,
    REQUEST_ID,
    REQUIRED_COLUMNS,
    RETURN,
    RETURN_DEADLINE_DAYS,
    RETURN_FEATURES,
    RING_WINDOW_DAYS,
    SHIFT,
    STRONG_KINDS,
)
from ppx.features.fraud.requests import (
    all_requests,
    claim_requests,
    delivered_at,
    label_of,
    return_requests,
)
from ppx.features.fraud.validation import FraudRequestError, validate_requests
from ppx.features.identity import HASH_COLUMNS

__all__ = [
    "AsOf",
    "BASE_FEATURES",
    "BURST_DAYS",
    "CLAIM",
    "CLAIM_FEATURES",
    "DEADLINE_SLACK_DAYS",
    "DURABLE_CATEGORIES",
    "EXCEPTION_SCAN",
    "EXTRA_LINKAGE_FEATURES",
    "FAR_GPS_M",
    "FEATURE_NAMES",
    "FraudHistory",
    "FraudHistoryIndex",
    "FraudRequestError",
    "HASH_COLUMNS",
    "HIGH_VALUE",
    "HISTORY_FEATURES",
    "IDENTITY_COLUMNS",
    "ID_KINDS",
    "ID_SHORT",
    "ITEM_FEATURES",
    "KIND",
    "KINDS",
    "KNOWN_FRAUD_FEATURES",
    "LABEL_AT",
    "LAG_BINS",
    "LAG_BIN_FEATURES",
    "LATE_WINDOW_DAYS",
    "LINKAGE_FEATURES",
    "LinkageGraph",
    "OPTIONAL_COLUMNS",
    "ORDER_FEATURES",
    "PREMIUM_PRICE",
    "REQUEST_ID",
    "REQUIRED_COLUMNS",
    "RETURN",
    "RETURN_DEADLINE_DAYS",
    "RETURN_FEATURES",
    "RING_WINDOW_DAYS",
    "SHIFT",
    "STRONG_KINDS",
    "all_requests",
    "build_history",
    "claim_requests",
    "delivered_at",
    "fraud_features",
    "label_of",
    "linkage_edges",
    "linkage_features",
    "return_requests",
    "to_seconds",
    "validate_requests",
]
