"""Point-in-time features for return-fraud and claim-fraud scoring, with account linkage.

One function, :func:`fraud_features`, turns raw request rows (one return or claim
request per row, the same columns the served model receives) plus a
:class:`FraudHistory` into a numeric frame. Every aggregate is computed **as of the
request time**: only events strictly before it, and only fraud labels whose
investigation had finished before it (``label_at = request time + label delay``).
Offline the history is built from the canonical tables; online it is the snapshot
logged with the model, so the served features equal the training features. The
request-independent part (sorted as-of indexes, category codes, first-fraud times) is
a :class:`HistoryIndex`: built per call offline, once at load by the served scorer.

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
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ppx.data import columns as C
from ppx.data.errors import RequestError
from ppx.data.times import unreadable, utc_times
from ppx.features.identity import (
    DEFAULT_SALT,
    HASH_COLUMNS,
    ID_KINDS,
    hash_column_name,
    hash_identities,
    salt_digest,
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

_ID_SHORT = {
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
#: Session 4. Once an account's fraud is confirmed its *kind* says which requests are
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
#: item" directly instead of having to carve it out of a raw lag (session 2). Session 3:
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
    *[f"n_shared_{_ID_SHORT[k]}" for k in ID_KINDS],
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
#: Extra linkage features tried in session 2 (``fraud_features(..., extra_linkage=True)``):
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


class FraudRequestError(RequestError):
    """A request row cannot be scored; the message names the field and the rows."""


# ----------------------------------------------------------------------------------------
# time helpers
# ----------------------------------------------------------------------------------------


def _secs(values) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps -> (int64 seconds since epoch, valid mask); NaT is invalid."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else values
    if isinstance(arr, np.ndarray) and np.issubdtype(arr.dtype, np.datetime64):
        valid = ~np.isnat(arr)
        out = np.where(valid, arr.astype("datetime64[s]").astype(np.int64), 0)
        return out.astype(np.int64), valid
    ts = pd.to_datetime(pd.Series(values), errors="coerce")
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    valid = ts.notna().to_numpy()
    out = np.zeros(len(ts), dtype=np.int64)
    out[valid] = ts[valid].to_numpy().astype("datetime64[s]").astype(np.int64)
    return out, valid


class _AsOf:
    """Counts and sums of per-group events strictly before per-query times.

    Events are sorted once by a composite (group, second) int64 key; each query is two
    binary searches, so a million requests cost about as much as one.
    """

    def __init__(self, group: np.ndarray, sec: np.ndarray, values: dict[str, np.ndarray]):
        key = (np.asarray(group, dtype=np.int64) * SHIFT) + np.asarray(sec, dtype=np.int64)
        order = np.argsort(key, kind="stable")
        self.key = key[order]
        self.cums = {
            k: np.concatenate([[0.0], np.cumsum(np.asarray(v, dtype=float)[order])])
            for k, v in values.items()
        }

    def _bounds(self, group, sec, window_s=None):
        g = np.asarray(group, dtype=np.int64) * SHIFT
        hi = np.searchsorted(self.key, g + np.asarray(sec, dtype=np.int64), side="left")
        if window_s is None:
            lo = np.searchsorted(self.key, g, side="left")
        else:
            lo = np.searchsorted(self.key, g + np.asarray(sec) - int(window_s), side="left")
            lo = np.maximum(lo, np.searchsorted(self.key, g, side="left"))
        return lo, hi

    def count(self, group, sec, window_s=None) -> np.ndarray:
        lo, hi = self._bounds(group, sec, window_s)
        return (hi - lo).astype(float)

    def sum(self, name, group, sec, window_s=None) -> np.ndarray:
        lo, hi = self._bounds(group, sec, window_s)
        c = self.cums[name]
        return c[hi] - c[lo]


# ----------------------------------------------------------------------------------------
# history (offline from tables; online from the snapshot logged with the model)
# ----------------------------------------------------------------------------------------


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


def _delivered_at(tables: dict[str, pd.DataFrame]) -> pd.Series:
    """Delivered-scan time per order id (NaT when the parcel never got one)."""
    s = tables[C.SHIPMENTS]
    return pd.Series(s[C.DELIVERED_AT].to_numpy(), index=s[C.ORDER_ID].to_numpy())


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
    deliv = _delivered_at(tables)
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


# ----------------------------------------------------------------------------------------
# request frames from the canonical tables (the training rows)
# ----------------------------------------------------------------------------------------


def _order_facts(tables, order_ids: np.ndarray) -> pd.DataFrame:
    o = tables[C.ORDERS].set_index(C.ORDER_ID)
    cols = [C.ORDERED_AT, C.ORDER_VALUE, C.DISCOUNT, C.PROMISED_DATE]
    return o.reindex(order_ids)[cols].reset_index(drop=True)


def return_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One request row per return, with its label (``confirmed_fraud``) and id."""
    r = tables[C.RETURNS]
    of = _order_facts(tables, r[C.ORDER_ID].to_numpy())
    deliv = _delivered_at(tables).reindex(r[C.ORDER_ID].to_numpy()).to_numpy()
    out = pd.DataFrame(
        {
            REQUEST_ID: r[C.RETURN_ID].to_numpy(),
            KIND: RETURN,
            C.CUSTOMER_ID: r[C.CUSTOMER_ID].to_numpy(),
            C.REQUESTED_AT: r[C.REQUESTED_AT].to_numpy(),
            C.AMOUNT: r[C.REFUND_AMOUNT].to_numpy(dtype=float),
            C.ORDER_ID: r[C.ORDER_ID].to_numpy(),
            **{k: of[k].to_numpy() for k in of.columns},
            C.DELIVERED_AT: deliv,
            C.PRODUCT_ID: r[C.PRODUCT_ID].to_numpy(),
            C.REASON: r[C.REASON].astype(str).to_numpy(),
            C.CONFIRMED_FRAUD: r[C.CONFIRMED_FRAUD].to_numpy(dtype=bool),
        }
    )
    out[KIND] = out[KIND].astype(str)
    return out


def claim_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """One request row per claim, with the delivery evidence known at claim time."""
    cl = tables[C.CLAIMS]
    of = _order_facts(tables, cl[C.ORDER_ID].to_numpy())
    s = tables[C.SHIPMENTS].set_index(C.SHIPMENT_ID).reindex(cl[C.SHIPMENT_ID].to_numpy())
    claimed = cl[C.CLAIMED_AT].to_numpy()
    deliv = s[C.DELIVERED_AT].to_numpy()
    seen = ~pd.isna(deliv) & (deliv < claimed)
    ev = tables[C.TRACKING_EVENTS]
    exc = ev[(ev[C.EVENT_TYPE] == "exception") & ev[C.SHIPMENT_ID].isin(cl[C.SHIPMENT_ID])]
    first_exc = exc.groupby(C.SHIPMENT_ID)[C.EVENT_AT].min()
    exc_at = first_exc.reindex(cl[C.SHIPMENT_ID].to_numpy()).to_numpy()
    out = pd.DataFrame(
        {
            REQUEST_ID: cl[C.CLAIM_ID].to_numpy(),
            KIND: CLAIM,
            C.CUSTOMER_ID: cl[C.CUSTOMER_ID].to_numpy(),
            C.REQUESTED_AT: claimed,
            C.AMOUNT: cl[C.AMOUNT].to_numpy(dtype=float),
            C.ORDER_ID: cl[C.ORDER_ID].to_numpy(),
            **{k: of[k].to_numpy() for k in of.columns},
            C.DELIVERED_AT: np.where(seen, deliv, np.datetime64("NaT")),
            C.CLAIM_TYPE: cl[C.CLAIM_TYPE].astype(str).to_numpy(),
            C.SIGNATURE: np.where(seen, s[C.SIGNATURE].to_numpy(dtype=bool), False),
            C.GPS_DISTANCE_M: np.where(seen, s[C.GPS_DISTANCE_M].to_numpy(dtype=float), np.nan),
            EXCEPTION_SCAN: ~pd.isna(exc_at) & (exc_at < claimed),
            C.CONFIRMED_FRAUD: cl[C.CONFIRMED_FRAUD].to_numpy(dtype=bool),
        }
    )
    out[C.DELIVERED_AT] = pd.to_datetime(out[C.DELIVERED_AT])
    out[KIND] = out[KIND].astype(str)
    return out


def all_requests(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Returns and claims in one frame, sorted by request time."""
    frame = pd.concat([return_requests(tables), claim_requests(tables)], ignore_index=True)
    return frame.sort_values([C.REQUESTED_AT, KIND], kind="stable").reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------


def _rows(mask: np.ndarray, limit: int = 5) -> list[int]:
    return np.flatnonzero(mask)[:limit].tolist()


def _present(values: np.ndarray) -> np.ndarray:
    """Non-missing, non-blank entries of an object / string column."""
    out = np.zeros(len(values), dtype=bool)
    for i, v in enumerate(values):
        out[i] = not _missing(v) and (str(v).strip() != "")
    return out


def _missing(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))


def validate_requests(
    requests: pd.DataFrame, history: FraudHistory, index: HistoryIndex | None = None
) -> pd.DataFrame:
    """Check raw request rows; return a copy with typed columns or raise a clear error.

    The checks run on plain numpy arrays (one request costs well under a millisecond);
    the returned frame has ``kind`` lower-case, ``customer_id`` int64, numbers float,
    times ``datetime64[ns]`` (UTC, naive).

    Raises:
        FraudRequestError: a required column is missing, ``kind`` is not
            ``return``/``claim``, an amount is negative or not a number, a time is
            missing or unparsable, the customer is unknown and no identity was given,
            a return precedes its delivery, or a claim precedes its order or cites a
            delivered scan from after the claim.
    """
    if not isinstance(requests, pd.DataFrame):
        raise FraudRequestError("requests must be a pandas DataFrame, one row per request")
    if len(requests) == 0:
        raise FraudRequestError("no requests: the frame is empty")
    missing = [c for c in REQUIRED_COLUMNS if c not in requests.columns]
    if missing:
        raise FraudRequestError(
            f"missing required column(s) {missing}; every request needs {list(REQUIRED_COLUMNS)}"
        )
    cols = {c: requests[c] for c in requests.columns}
    out: dict[str, np.ndarray] = {c: v.to_numpy() for c, v in cols.items()}
    raw_kind = out[KIND]
    kind = np.array(
        [("" if _missing(v) else str(v)).strip().lower() for v in raw_kind], dtype=object
    )
    bad = ~np.isin(kind, KINDS)
    if bad.any():
        vals = raw_kind[bad][:3].tolist()
        raise FraudRequestError(
            f"field {KIND!r} must be 'return' or 'claim'; got {vals} at rows {_rows(bad)}"
        )
    out[KIND] = kind
    cid = pd.to_numeric(cols[C.CUSTOMER_ID], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = np.isnan(cid)
    if bad.any():
        raise FraudRequestError(f"field {C.CUSTOMER_ID!r} must be an integer id; rows {_rows(bad)}")
    out[C.CUSTOMER_ID] = cid.astype(np.int64)
    amt = pd.to_numeric(cols[C.AMOUNT], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(amt) | (amt < 0)
    if bad.any():
        raise FraudRequestError(
            f"field {C.AMOUNT!r} must be a non-negative number; got "
            f"{out[C.AMOUNT][bad][:3].tolist()} at rows {_rows(bad)}"
        )
    out[C.AMOUNT] = amt
    for col in (C.REQUESTED_AT, C.ORDERED_AT, C.PROMISED_DATE, C.DELIVERED_AT, C.SIGNUP_AT):
        if col in cols:
            raw = cols[col]
            parsed = utc_times(raw)
            unparsable = unreadable(raw, parsed)
            if unparsable.any():
                raise FraudRequestError(
                    f"field {col!r} is not a timestamp at rows {_rows(unparsable)}: "
                    f"{raw.to_numpy()[unparsable][:3].tolist()}"
                )
            out[col] = parsed
    t = out[C.REQUESTED_AT]
    bad = np.isnat(t)
    if bad.any():
        raise FraudRequestError(
            f"field {C.REQUESTED_AT!r} is required; missing at rows {_rows(bad)}"
        )
    for col in (C.ORDER_VALUE, C.DISCOUNT, C.GPS_DISTANCE_M):
        if col in cols:
            v = pd.to_numeric(cols[col], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
            neg = np.isfinite(v) & (v < 0)
            if neg.any():
                raise FraudRequestError(f"field {col!r} must not be negative; rows {_rows(neg)}")
            out[col] = v
    # Unknown customers need an identity (a brand-new account) to be scored.
    if index is not None:
        known = index.is_known(out[C.CUSTOMER_ID])
    else:
        known = np.isin(out[C.CUSTOMER_ID], history.known_customers())
    if not known.all():
        has_id = np.zeros(len(t), dtype=bool)
        for k in ID_KINDS:
            if k in cols:
                has_id |= _present(out[k])
        bad = ~known & ~has_id
        if bad.any():
            ids = out[C.CUSTOMER_ID][bad][:3].tolist()
            raise FraudRequestError(
                f"unknown {C.CUSTOMER_ID} {ids} (rows {_rows(bad)}): not in the history "
                f"snapshot; to score a new account pass {C.SIGNUP_AT} and at least one of "
                f"{list(ID_KINDS)}"
            )
    if C.SIGNUP_AT in out:
        su = out[C.SIGNUP_AT]
        bad = ~known & ~np.isnat(su) & (su > t)
        if bad.any():
            raise FraudRequestError(
                f"field {C.SIGNUP_AT!r} is after {C.REQUESTED_AT!r} at rows {_rows(bad)}"
            )
    if C.ORDERED_AT in out:
        o = out[C.ORDERED_AT]
        bad = ~np.isnat(o) & (t < o)
        if bad.any():
            raise FraudRequestError(
                f"{C.REQUESTED_AT!r} is before {C.ORDERED_AT!r} at rows {_rows(bad)}: "
                "a return or claim cannot precede its order"
            )
    is_claim = kind == CLAIM
    if C.DELIVERED_AT in out:
        d = out[C.DELIVERED_AT]
        late = ~np.isnat(d) & (d > t)
        bad = is_claim & late
        if bad.any():
            raise FraudRequestError(
                f"claim before delivery at rows {_rows(bad)}: {C.REQUESTED_AT!r} precedes the "
                f"{C.DELIVERED_AT!r} scan it cites; leave {C.DELIVERED_AT!r} empty if the parcel "
                "had no delivered scan when the claim was made"
            )
        bad = ~is_claim & late
        if bad.any():
            raise FraudRequestError(
                f"return before delivery at rows {_rows(bad)}: {C.REQUESTED_AT!r} precedes "
                f"{C.DELIVERED_AT!r}"
            )
    if C.PRODUCT_ID in cols:
        pid = pd.to_numeric(cols[C.PRODUCT_ID], errors="coerce").to_numpy(
            dtype=float, na_value=np.nan
        )
        has = ~is_claim & ~np.isnan(pid)
        pid_i = np.where(has, pid, -1).astype(np.int64)
        if index is not None:
            listed = index.product_ids.get_indexer(pid_i) >= 0
        else:
            listed = np.isin(pid_i, history.products[C.PRODUCT_ID].to_numpy())
        unknown = has & ~listed
        if unknown.any():
            raise FraudRequestError(
                f"unknown {C.PRODUCT_ID} {pid[unknown][:3].tolist()} at rows {_rows(unknown)}"
            )
    for col, allowed, rows in (
        (C.REASON, C.RETURN_REASONS, ~is_claim),
        (C.CLAIM_TYPE, C.CLAIM_TYPES, is_claim),
    ):
        if col in cols:
            v = out[col]
            given = np.array([not _missing(x) for x in v], dtype=bool)
            bad = rows & given & ~np.isin(np.array([str(x) for x in v], dtype=object), allowed)
            if bad.any():
                raise FraudRequestError(
                    f"field {col!r} must be one of {list(allowed)} at rows {_rows(bad)}"
                )
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------
# linkage graph
# ----------------------------------------------------------------------------------------


@dataclass
class LinkageGraph:
    """Accounts joined by shared hashed identifiers.

    ``adjacency`` is the account-account matrix (any identifier), ``by_kind`` one
    matrix per identifier kind; both come from a sparse incidence product so the
    graph builds in milliseconds for tens of thousands of accounts.
    """

    customer_ids: np.ndarray
    signup_s: np.ndarray
    adjacency: sp.csr_matrix
    by_kind: dict[str, sp.csr_matrix]
    static_component: np.ndarray
    #: Per identifier kind: the distinct hashes (column order) and the account x hash
    #: incidence matrix, kept so :meth:`extend` can add new accounts without a rebuild.
    incidence: dict[str, tuple[pd.Index, sp.csr_matrix]] = field(default_factory=dict)

    @classmethod
    def build(cls, identities: pd.DataFrame) -> LinkageGraph:
        ids = identities[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
        n = len(ids)
        signup, ok = _secs(identities[C.SIGNUP_AT])
        signup = np.where(ok, signup, np.iinfo(np.int64).min // 4)
        by_kind = {}
        incidence = {}
        total = sp.csr_matrix((n, n), dtype=np.float32)
        for kind in ID_KINDS:
            col = identities[hash_column_name(kind)]
            present = col.notna().to_numpy()
            codes, uniques = pd.factorize(col[present])
            rows = np.flatnonzero(present)
            inc = sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float32), (rows, codes)),
                shape=(n, max(int(codes.max()) + 1 if len(codes) else 0, 1)),
            )
            incidence[kind] = (pd.Index(uniques), inc)
            a = (inc @ inc.T).tocsr()
            a.setdiag(0)
            a.eliminate_zeros()
            a.data[:] = 1.0
            by_kind[kind] = a
            total = total + a
        total = total.tocsr()
        total.data[:] = 1.0
        _, comp = connected_components(total, directed=False)
        return cls(ids, signup, total, by_kind, comp, incidence)

    def extend(self, new: pd.DataFrame) -> LinkageGraph:
        """This graph plus new accounts (hashed identities), as :meth:`build` would make it.

        Only the new accounts' rows are matched against the stored incidence, so a
        request from a brand-new account costs milliseconds instead of a full rebuild.
        The extended graph keeps no incidence of its own (extend the base graph again).
        """
        if not self.incidence:
            raise ValueError("this graph keeps no incidence matrices; use LinkageGraph.build")
        n, k = len(self.customer_ids), len(new)
        signup, ok = _secs(new[C.SIGNUP_AT])
        signup = np.where(ok, signup, np.iinfo(np.int64).min // 4)
        by_kind = {}
        linked = False
        for kind in ID_KINDS:
            uniques, inc = self.incidence[kind]
            hashes = new[hash_column_name(kind)].to_numpy(dtype=object)
            present = np.array([h is not None and h == h for h in hashes], dtype=bool)
            if not present.any():
                by_kind[kind] = _pad(self.by_kind[kind], k)
                continue
            hashes = hashes[present]
            codes = uniques.get_indexer(hashes)
            rows = np.flatnonzero(present)
            old = codes >= 0
            cross = sp.csr_matrix((k, n), dtype=np.float32)
            if old.any():
                inc_new = sp.csr_matrix(
                    (np.ones(old.sum(), dtype=np.float32), (rows[old], codes[old])),
                    shape=(k, inc.shape[1]),
                )
                cross = (inc_new @ inc.T).tocsr()
            # New accounts linked among themselves: equal hashes (seen before or not).
            same = hashes[:, None] == hashes[None, :]
            np.fill_diagonal(same, False)
            r, c = np.nonzero(same)
            inner = sp.csr_matrix(
                (np.ones(len(r), dtype=np.float32), (rows[r], rows[c])), shape=(k, k)
            )
            if cross.nnz == 0 and inner.nnz == 0:
                by_kind[kind] = _pad(self.by_kind[kind], k)
                continue
            a = sp.bmat([[self.by_kind[kind], cross.T], [cross, inner]], format="csr")
            a.data[:] = 1.0
            by_kind[kind] = a
            linked = True
        ids = np.concatenate([self.customer_ids, new[C.CUSTOMER_ID].to_numpy(dtype=np.int64)])
        if not linked:  # no new edge: same components, each new account on its own
            comp = np.concatenate(
                [self.static_component, self.static_component.max() + 1 + np.arange(k)]
            )
            total = _pad(self.adjacency, k)
        else:
            total = by_kind[ID_KINDS[0]]
            for kind in ID_KINDS[1:]:
                total = total + by_kind[kind]
            total = total.tocsr()
            total.data[:] = 1.0
            _, comp = connected_components(total, directed=False)
        grown = LinkageGraph(ids, np.concatenate([self.signup_s, signup]), total, by_kind, comp)
        grown._base = self  # the first n nodes are this graph's (flag times can be reused)
        return grown

    def nodes(self, customer_ids: np.ndarray) -> np.ndarray:
        """Graph node of each customer id (-1 when the graph does not hold it)."""
        pos = getattr(self, "_pos", None)
        if pos is None:
            pos = self._pos = pd.Index(self.customer_ids)
        return pos.get_indexer(np.asarray(customer_ids, dtype=np.int64))


def _pad(a: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """A square CSR matrix with ``k`` empty rows and columns appended (no copy of data)."""
    n = a.shape[0]
    indptr = np.concatenate([a.indptr, np.full(k, a.indptr[-1], dtype=a.indptr.dtype)])
    return sp.csr_matrix((a.data, a.indices, indptr), shape=(n + k, n + k))


def linkage_edges(graph: LinkageGraph) -> pd.DataFrame:
    """The graph as an edge list (one row per linked pair and identifier kind).

    Written next to the history snapshot so the served model's graph can be audited
    and checked against the one rebuilt at load time; it holds only account ids.
    """
    frames = []
    for kind, a in graph.by_kind.items():
        coo = sp.triu(a, k=1).tocoo()
        frames.append(
            pd.DataFrame(
                {
                    "src": graph.customer_ids[coo.row],
                    "dst": graph.customer_ids[coo.col],
                    "kind": _ID_SHORT[kind],
                }
            )
        )
    out = pd.concat(frames, ignore_index=True)
    out["kind"] = out["kind"].astype(str)
    return out


def _explode(adj: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query position, neighbour index) pairs for the given node rows of a CSR matrix."""
    starts, ends = adj.indptr[rows], adj.indptr[rows + 1]
    lens = ends - starts
    q = np.repeat(np.arange(len(rows)), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    nb = adj.indices[np.repeat(starts, lens) + offs]
    return q, nb


def _component_sweep(
    graph: LinkageGraph,
    node: np.ndarray,
    t_s: np.ndarray,
    flag_s: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Component size and flagged-account count per query, as of each query time.

    A single time-ordered pass: accounts join at signup (union with neighbours that
    already exist), flags arrive when an account's first confirmed fraud becomes
    known, queries read their component. Only static components that contain a
    queried account are swept, so one online request touches a handful of nodes.
    """
    wanted = np.unique(graph.static_component[node])
    members = np.flatnonzero(np.isin(graph.static_component, wanted))
    # Singletons in the static graph need no sweep: size 1 (if signed up), no neighbours.
    events = []  # (time, order, kind, payload); order: queries (0) before joins (1)/flags (2)
    for i, (u, t) in enumerate(zip(node, t_s, strict=True)):
        events.append((int(t), 0, i, int(u)))
    for u in members:
        events.append((int(graph.signup_s[u]), 1, -1, int(u)))
        if flag_s[u] != np.iinfo(np.int64).max:
            events.append((int(flag_s[u]), 2, -1, int(u)))
    events.sort(key=lambda e: (e[0], e[1]))
    uf = nx.utils.UnionFind()
    joined: set[int] = set()
    flagged: dict[int, int] = {}
    size = np.zeros(len(node))
    fraud = np.zeros(len(node))
    adj = graph.adjacency
    for _, kind, qi, u in events:
        if kind == 0:
            if u in joined:
                r = uf[u]
                size[qi] = uf.weights[r]
                fraud[qi] = flagged.get(r, 0)
            else:
                size[qi] = 1.0
            continue
        if kind == 1:
            joined.add(u)
            uf[u]
            for v in adj.indices[adj.indptr[u] : adj.indptr[u + 1]]:
                v = int(v)
                if v in joined:
                    ru, rv = uf[u], uf[v]
                    if ru != rv:
                        f = flagged.pop(ru, 0) + flagged.pop(rv, 0)
                        uf.union(ru, rv)
                        flagged[uf[ru]] = f
        else:
            if u not in joined:
                joined.add(u)
            r = uf[u]
            flagged[r] = flagged.get(r, 0) + 1
    return size, fraud


# ----------------------------------------------------------------------------------------
# the feature function
# ----------------------------------------------------------------------------------------


class HistoryIndex:
    """Everything request-independent that the features read from a history.

    Sorted as-of indexes of orders, deliveries, items, returns, claims and labels, the
    category codes, the product lookup and each account's first known-fraud time.
    :func:`fraud_features` builds one per call when none is given (training: one call
    for all rows); the served scorer builds it once at load and passes it to every
    request, so a request only pays for the binary searches of its own rows. Both paths
    run the same code on the same index, so online features equal offline ones.
    """

    def __init__(self, history: FraudHistory):
        h = self.history = history
        self.known = np.unique(h.known_customers().astype(np.int64))
        ho_s, ho_ok = _secs(h.orders[C.ORDERED_AT])
        self.o_idx = _AsOf(
            h.orders[C.CUSTOMER_ID].to_numpy()[ho_ok],
            ho_s[ho_ok],
            {"value": h.orders[C.ORDER_VALUE].to_numpy()[ho_ok]},
        )
        hd_s, hd_ok = _secs(h.orders[C.DELIVERED_AT])
        self.od_idx = _AsOf(h.orders[C.CUSTOMER_ID].to_numpy()[hd_ok], hd_s[hd_ok], {})
        # Catalogue first: the item and return indexes carry per-item price and kind.
        self.cat_code = {c: i for i, c in enumerate(C.CATEGORIES)}
        prod = h.products
        self.product_ids = pd.Index(prod[C.PRODUCT_ID].to_numpy(dtype=np.int64))
        self.price = prod[C.PRICE].to_numpy(dtype=float)
        self.product_cat = self._codes(prod[C.CATEGORY])
        durable_codes = [self.cat_code[c] for c in DURABLE_CATEGORIES]
        it_cat = self._codes(h.items[C.CATEGORY])
        rt_cat = self._codes(h.returns[C.CATEGORY])
        it_price, _ = self.product(h.items[C.PRODUCT_ID].to_numpy(dtype=np.int64))
        hi_s, hi_ok = _secs(h.items[C.DELIVERED_AT])
        # Taste for premium items and how many durable goods were bought: the shopping
        # traits of accounts that wardrobe or return for rings (they buy pricier gear).
        self.i_idx = _AsOf(
            h.items[C.CUSTOMER_ID].to_numpy()[hi_ok],
            hi_s[hi_ok],
            {
                "premium": (np.nan_to_num(it_price) > PREMIUM_PRICE).astype(float)[hi_ok],
                "price_log": np.log1p(np.nan_to_num(it_price))[hi_ok],
                "durable": np.isin(it_cat, durable_codes).astype(float)[hi_ok],
            },
        )
        self.kept_idx = self._kept_durables(it_cat, durable_codes)
        hr_s, hr_ok = _secs(h.returns[C.REQUESTED_AT])
        raw_lag = h.returns["lag_days"].to_numpy(dtype=float)
        lag = np.nan_to_num(raw_lag)
        hv = (h.returns[C.AMOUNT].to_numpy() > HIGH_VALUE).astype(float)
        lw = (lag >= LATE_WINDOW_DAYS).astype(float)
        r_dur = np.isin(rt_cat, durable_codes).astype(float)
        self.r_idx = _AsOf(
            h.returns[C.CUSTOMER_ID].to_numpy()[hr_ok],
            hr_s[hr_ok],
            {
                "hv": hv[hr_ok],
                "lw": lw[hr_ok],
                "lag": lag[hr_ok],
                "durable": r_dur[hr_ok],
                "lw_durable": (lw * r_dur)[hr_ok],
            },
        )
        self.label_delay_s = int(round(float(h.meta.get("label_delay_days", 14.0)) * 86_400))
        hc_s, hc_ok = _secs(h.claims[C.REQUESTED_AT])
        self.c_idx = _AsOf(
            h.claims[C.CUSTOMER_ID].to_numpy()[hc_ok],
            hc_s[hc_ok],
            {
                "unexplained": h.claims["unexplained"].to_numpy(dtype=float)[hc_ok],
                "fast": h.claims["fast"].to_numpy(dtype=float)[hc_ok],
            },
        )
        # Labels: usable from label_at on; fraud and investigated counts.
        lab = pd.concat(
            [
                h.returns[[C.CUSTOMER_ID, LABEL_AT, C.CONFIRMED_FRAUD]],
                h.claims[[C.CUSTOMER_ID, LABEL_AT, C.CONFIRMED_FRAUD]],
            ],
            ignore_index=True,
        )
        lab_s, lab_ok = _secs(lab[LABEL_AT])
        lab_fraud = lab[C.CONFIRMED_FRAUD].to_numpy(dtype=bool)
        lab_cust = lab[C.CUSTOMER_ID].to_numpy()
        # The kind of each confirmed fraud: a late return, an early return, a claim.
        n_r = len(h.returns)
        lab_late = np.zeros(len(lab), dtype=bool)
        lab_late[:n_r] = lag >= LATE_WINDOW_DAYS
        lab_early = np.zeros(len(lab), dtype=bool)  # a return of unknown lag is neither
        lab_early[:n_r] = np.isfinite(raw_lag) & (raw_lag < LATE_WINDOW_DAYS)
        lab_claim = np.zeros(len(lab), dtype=bool)
        lab_claim[n_r:] = True
        self.l_idx = _AsOf(
            lab_cust[lab_ok],
            lab_s[lab_ok],
            {
                "fraud": lab_fraud[lab_ok].astype(float),
                "fraud_late": (lab_fraud & lab_late & ~lab_claim)[lab_ok].astype(float),
                "fraud_early": (lab_fraud & lab_early)[lab_ok].astype(float),
                "fraud_claim": (lab_fraud & lab_claim)[lab_ok].astype(float),
            },
        )
        # First time each account became a known fraudster (its earliest confirmed fraud).
        fr = lab_fraud & lab_ok
        self.first_flag = (
            pd.Series(lab_s[fr]).groupby(lab_cust[fr]).min()
            if fr.any()
            else pd.Series(dtype=np.int64)
        )
        # Category / product base-rate indexes.
        self.ci_idx = _AsOf(it_cat[hi_ok], hi_s[hi_ok], {})
        self.cr_idx = _AsOf(rt_cat[hr_ok], hr_s[hr_ok], {})
        self.pi_idx = _AsOf(h.items[C.PRODUCT_ID].to_numpy()[hi_ok], hi_s[hi_ok], {})
        self.pr_idx = _AsOf(h.returns[C.PRODUCT_ID].to_numpy()[hr_ok], hr_s[hr_ok], {})
        self._flags: tuple[int, np.ndarray] | None = None

    def _kept_durables(self, it_cat: np.ndarray, durable_codes: list[int]) -> _AsOf:
        """Durable items kept past the return window, counted from the window's close.

        A wardrober sends most durable goods back; each durable item whose window
        closed without a return is evidence against that. The event time is the
        window's close, so a request only sees items whose outcome is already known.
        """
        h = self.history
        dur = np.isin(it_cat, durable_codes)
        items = pd.DataFrame(
            {
                "c": h.items[C.CUSTOMER_ID].to_numpy(dtype=np.int64)[dur],
                "p": h.items[C.PRODUCT_ID].to_numpy(dtype=np.int64)[dur],
                "t": pd.to_datetime(h.items[C.DELIVERED_AT].to_numpy()[dur]),
            }
        ).dropna(subset=["t"])
        rets = pd.DataFrame(
            {
                "c": h.returns[C.CUSTOMER_ID].to_numpy(dtype=np.int64),
                "p": h.returns[C.PRODUCT_ID].to_numpy(dtype=np.int64),
                "t": pd.to_datetime(h.returns[C.REQUESTED_AT].to_numpy()),
                "returned": True,
            }
        ).dropna(subset=["t"])
        window = pd.Timedelta(days=RETURN_DEADLINE_DAYS)
        m = pd.merge_asof(
            items.sort_values("t"),
            rets.sort_values("t"),
            on="t",
            by=["c", "p"],
            direction="forward",
            tolerance=window,
        )
        kept = m["returned"].isna().to_numpy()
        close_s, ok = _secs((m["t"] + window + pd.Timedelta(seconds=1)).to_numpy())
        return _AsOf(m["c"].to_numpy()[ok], close_s[ok], {"kept": kept[ok].astype(float)})

    def _codes(self, categories: pd.Series) -> np.ndarray:
        codes = pd.Series(self.cat_code, dtype=np.int64)
        return (
            pd.Series(categories.astype(object).to_numpy())
            .map(codes)
            .fillna(-1)
            .to_numpy(dtype=np.int64)
        )

    def is_known(self, customer_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(customer_ids, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.known, ids), max(len(self.known) - 1, 0))
        return (self.known[pos] == ids) if len(self.known) else np.zeros(len(ids), dtype=bool)

    def product(self, pid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(price, category code) per product id; NaN / -1 for unknown or missing ids."""
        pos = self.product_ids.get_indexer(np.asarray(pid, dtype=np.int64))
        ok = pos >= 0
        price = np.where(ok, self.price[np.maximum(pos, 0)], np.nan)
        cat = np.where(ok, self.product_cat[np.maximum(pos, 0)], -1)
        return price, cat

    def flag_seconds(self, graph: LinkageGraph) -> np.ndarray:
        """First known-fraud time per graph node (int64 max when never flagged)."""
        if self._flags is not None and self._flags[0] == id(graph):
            return self._flags[1]
        base = getattr(graph, "_base", None)
        if base is not None and self._flags is not None and self._flags[0] == id(base):
            # An extension of the cached graph by new accounts, which have no labels yet.
            extra = len(graph.customer_ids) - len(base.customer_ids)
            never = np.full(extra, np.iinfo(np.int64).max, dtype=np.int64)
            return np.concatenate([self._flags[1], never])
        flag_s = np.full(len(graph.customer_ids), np.iinfo(np.int64).max, dtype=np.int64)
        if len(self.first_flag):
            pos = graph.nodes(self.first_flag.index.to_numpy())
            keep = pos >= 0
            flag_s[pos[keep]] = self.first_flag.to_numpy()[keep]
        self._flags = (id(graph), flag_s)
        return flag_s


def _new_accounts(req: pd.DataFrame, salt: str, known: np.ndarray) -> pd.DataFrame | None:
    """The hashed identity of accounts only the requests know (None when there are none)."""
    if known.all():
        return None
    new = req.loc[~known].drop_duplicates(C.CUSTOMER_ID).copy()
    if C.SIGNUP_AT not in new.columns:
        new[C.SIGNUP_AT] = pd.NaT
    first_t = req.loc[~known].groupby(C.CUSTOMER_ID)[C.REQUESTED_AT].min()
    sign = new[C.SIGNUP_AT].fillna(new[C.CUSTOMER_ID].map(first_t) - pd.Timedelta(seconds=1))
    new[C.SIGNUP_AT] = sign
    return hash_identities(new, salt=salt)


def fraud_features(
    requests: pd.DataFrame,
    history: FraudHistory,
    salt: str = DEFAULT_SALT,
    graph: LinkageGraph | None = None,
    extra_linkage: bool = False,
    index: HistoryIndex | None = None,
) -> pd.DataFrame:
    """Raw request rows -> numeric features (:data:`FEATURE_NAMES`), as of request time.

    The same call builds one online request and a training frame of tens of
    thousands of rows; nothing later than a row's ``requested_at`` is used, and a
    row's own label never enters its features.

    Args:
        requests: one row per request (columns in :data:`REQUIRED_COLUMNS`,
            :data:`OPTIONAL_COLUMNS` and, for new accounts, :data:`IDENTITY_COLUMNS`).
        history: event history (offline from the tables, online the logged snapshot).
        salt: identifier hashing salt; must match the one used for ``history``.
        graph: a prebuilt graph of ``history.identities`` (reused across calls when no
            request introduces a new account).
        extra_linkage: also return :data:`EXTRA_LINKAGE_FEATURES` (ablations only).
        index: a prebuilt :class:`HistoryIndex` of ``history`` (the served scorer keeps
            one); built here when missing.

    Raises:
        FraudRequestError: malformed requests (see :func:`validate_requests`).
    """
    if history.meta.get("salt_digest") not in (None, salt_digest(salt)):
        raise FraudRequestError("identifier salt differs from the one the history was hashed with")
    if index is None or index.history is not history:
        index = HistoryIndex(history)
    req = validate_requests(requests, history, index=index)
    n = len(req)
    t_s, _ = _secs(req[C.REQUESTED_AT])
    is_claim = (req[KIND] == CLAIM).to_numpy()
    feats: dict[str, np.ndarray] = {}

    def col(name, default=np.nan, dtype=float):
        if name in req.columns:
            v = req[name].to_numpy()
            if v.dtype.kind in "fiub":
                v = v.astype(dtype)
                if v.dtype.kind == "f":
                    v[np.isnan(v)] = default
                return v
            return pd.to_numeric(req[name], errors="coerce").to_numpy(dtype=dtype, na_value=default)
        return np.full(n, default, dtype=dtype)

    def tcol(name):
        if name in req.columns:
            return _secs(req[name])
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)

    cust = req[C.CUSTOMER_ID].to_numpy(dtype=np.int64)
    known = index.is_known(cust)
    fresh = _new_accounts(req, salt, known)
    n_hist = len(history.identities)
    if graph is None or len(graph.customer_ids) != n_hist:
        graph = LinkageGraph.build(history.identities)
    if fresh is not None:
        graph = graph.extend(fresh)
    node = graph.nodes(cust)
    signup_s = graph.signup_s[node]
    day = 86_400.0

    # --- order and request facts -------------------------------------------------------
    amount = col(C.AMOUNT, 0.0)
    value = col(C.ORDER_VALUE)
    value = np.where(np.isnan(value), amount, value)
    discount = np.nan_to_num(col(C.DISCOUNT, 0.0))
    ord_s, ord_ok = tcol(C.ORDERED_AT)
    del_s, del_ok = tcol(C.DELIVERED_AT)
    prom_s, prom_ok = tcol(C.PROMISED_DATE)
    feats["is_claim"] = is_claim.astype(float)
    feats["amount_log"] = np.log1p(amount)
    feats["order_value_log"] = np.log1p(value)
    feats["discount_share"] = discount / np.maximum(value + discount, 1e-6)
    feats["account_age_days"] = np.maximum(t_s - signup_s, 0) / day
    feats["order_account_age_days"] = np.where(
        ord_ok, np.maximum(ord_s - signup_s, 0) / day, feats["account_age_days"]
    )
    feats["days_since_order"] = np.where(ord_ok, (t_s - ord_s) / day, 0.0)
    feats["late_delivery"] = (del_ok & prom_ok & (del_s >= prom_s + 86_400)).astype(float)

    # --- customer history as of t ------------------------------------------------------
    o_idx, od_idx, i_idx = index.o_idx, index.od_idx, index.i_idx
    r_idx, c_idx, l_idx = index.r_idx, index.c_idx, index.l_idx
    w90 = 90 * 86_400
    n_orders = o_idx.count(cust, t_s)
    n_items = i_idx.count(cust, t_s)
    n_deliv = od_idx.count(cust, t_s)
    n_ret = r_idx.count(cust, t_s)
    n_hv = r_idx.sum("hv", cust, t_s)
    n_lw = r_idx.sum("lw", cust, t_s)
    n_cl = c_idx.count(cust, t_s)
    feats["n_orders"] = n_orders
    feats["spend_log"] = np.log1p(o_idx.sum("value", cust, t_s))
    feats["n_orders_90d"] = o_idx.count(cust, t_s, w90)
    feats["n_items_delivered"] = n_items
    feats["n_returns"] = n_ret
    feats["return_rate"] = n_ret / (n_items + 2.0)
    feats["n_returns_90d"] = r_idx.count(cust, t_s, w90)
    feats["n_hv_returns"] = n_hv
    feats["hv_return_rate"] = n_hv / (n_items + 2.0)
    feats["n_late_window_returns"] = n_lw
    feats["late_window_share"] = n_lw / (n_ret + 1.0)
    feats["mean_return_lag"] = r_idx.sum("lag", cust, t_s) / np.maximum(n_ret, 1.0)
    feats["n_claims"] = n_cl
    feats["claim_rate"] = n_cl / (n_deliv + 2.0)
    feats["n_unexplained_claims"] = c_idx.sum("unexplained", cust, t_s)
    feats["n_fast_claims"] = c_idx.sum("fast", cust, t_s)
    feats["n_labels_known"] = l_idx.count(cust, t_s)
    feats["own_fraud_known"] = l_idx.sum("fraud", cust, t_s)
    n_durable = i_idx.sum("durable", cust, t_s)
    feats["premium_item_share"] = i_idx.sum("premium", cust, t_s) / (n_items + 2.0)
    feats["mean_item_price_log"] = i_idx.sum("price_log", cust, t_s) / np.maximum(n_items, 1.0)
    feats["n_durable_items"] = n_durable
    feats["durable_return_rate"] = r_idx.sum("durable", cust, t_s) / (n_durable + 2.0)
    feats["n_durable_kept"] = index.kept_idx.sum("kept", cust, t_s)

    # --- item and category base rates ------------------------------------------------
    pid = col(C.PRODUCT_ID, -1.0)
    has_item = ~is_claim & (pid >= 0)
    pid_i = np.where(has_item, pid, -1).astype(np.int64)
    price, req_cat = index.product(pid_i)
    cat_code = index.cat_code
    ci_idx, cr_idx, pi_idx, pr_idx = index.ci_idx, index.cr_idx, index.pi_idx, index.pr_idx
    cat_items = ci_idx.count(req_cat, t_s)
    cat_rets = cr_idx.count(req_cat, t_s)
    prior = 0.06
    cat_rate = (cat_rets + prior * 50) / (cat_items + 50)
    p_items = pi_idx.count(np.maximum(pid_i, 0), t_s)
    p_rets = pr_idx.count(np.maximum(pid_i, 0), t_s)
    feats["item_price_log"] = np.where(has_item, np.log1p(np.nan_to_num(price)), 0.0)
    feats["refund_to_price"] = np.where(
        has_item & (price > 0), amount / np.where(price > 0, price, 1.0), 0.0
    )
    feats["category_return_rate"] = np.where(has_item & (req_cat >= 0), cat_rate, 0.0)
    feats["product_return_rate"] = np.where(
        has_item, (p_rets + cat_rate * 20) / (p_items + 20), 0.0
    )
    for c, i in cat_code.items():
        feats[f"cat_{c}"] = (has_item & (req_cat == i)).astype(float)

    # --- return facts ---------------------------------------------------------------------
    ret_lag = np.where(~is_claim & del_ok, (t_s - del_s) / day, 0.0)
    feats["return_lag_days"] = ret_lag
    feats["late_window_return"] = (~is_claim & (ret_lag >= LATE_WINDOW_DAYS)).astype(float)
    # Wardrobing is "use it, then return it late": durable goods near the window's end.
    durable = feats["cat_equipment"] + feats["cat_merch"]
    feats["late_window_durable"] = feats["late_window_return"] * durable
    deadline = RETURN_DEADLINE_DAYS - DEADLINE_SLACK_DAYS
    feats["at_return_deadline"] = (~is_claim & del_ok & (ret_lag >= deadline)).astype(float)
    feats["high_value_item"] = (has_item & (np.nan_to_num(price) > HIGH_VALUE)).astype(float)
    is_ret = (~is_claim).astype(float)
    edges = (*LAG_BINS[1:], deadline)  # deadline returns have their own feature
    for a, b, name in zip(LAG_BINS, edges, LAG_BIN_FEATURES[::2], strict=True):
        in_bin = is_ret * ((ret_lag >= a) & (ret_lag < b))
        feats[name] = in_bin * durable
        feats[name.replace("_durable", "_other")] = in_bin * (1 - durable)
    feats["lag_x_durable"] = ret_lag * durable
    feats["late_window_history_durable"] = n_lw * durable
    feats["early_high_value_return"] = (
        is_ret * (ret_lag < RING_WINDOW_DAYS) * feats["high_value_item"]
    )
    reason = (
        req[C.REASON].astype(object).to_numpy()
        if C.REASON in req.columns
        else np.full(n, None, dtype=object)
    )
    for r in C.RETURN_REASONS:
        feats[f"reason_{r}"] = (~is_claim & (reason == r)).astype(float)

    # --- the kind of fraud already known, and requests still under investigation --------
    fraud_late = l_idx.sum("fraud_late", cust, t_s)
    fraud_early = l_idx.sum("fraud_early", cust, t_s)
    fraud_claims = l_idx.sum("fraud_claim", cust, t_s)
    feats["own_fraud_late_returns"] = fraud_late
    feats["own_fraud_early_returns"] = fraud_early
    feats["own_fraud_claims"] = fraud_claims
    feats["known_wardrobe_match"] = (fraud_late > 0) * feats["late_window_durable"]
    feats["known_ring_match"] = (fraud_early + fraud_claims > 0) * feats["early_high_value_return"]
    pending = index.label_delay_s
    feats["n_pending_returns"] = r_idx.count(cust, t_s, pending)
    feats["n_pending_late_durable"] = r_idx.sum("lw_durable", cust, t_s, pending)

    # --- claim evidence ---------------------------------------------------------------
    gps = col(C.GPS_DISTANCE_M)
    scan = is_claim & del_ok
    feats["delivered_scan"] = scan.astype(float)
    sig = col(C.SIGNATURE, 0.0)
    feats["signature"] = (is_claim & scan & (np.nan_to_num(sig) > 0)).astype(float)
    feats["gps_distance_log"] = np.where(scan, np.log1p(np.nan_to_num(gps)), 0.0)
    feats["gps_far"] = (scan & (np.nan_to_num(gps) > FAR_GPS_M)).astype(float)
    feats["hours_since_delivery"] = np.where(
        scan, np.clip((t_s - del_s) / 3600.0, 0, 24 * 60), -1.0
    )
    exc = col(EXCEPTION_SCAN, 0.0)
    feats["exception_scan"] = (is_claim & (np.nan_to_num(exc) > 0)).astype(float)
    ctype = (
        req[C.CLAIM_TYPE].astype(object).to_numpy()
        if C.CLAIM_TYPE in req.columns
        else np.full(n, "item_not_received", dtype=object)
    )
    feats["claim_not_received"] = (is_claim & (ctype != "damaged_in_transit")).astype(float)

    # --- linkage --------------------------------------------------------------------------
    feats.update(_linkage(graph, node, cust, t_s, signup_s, index, extra_linkage))
    names = FEATURE_NAMES + (EXTRA_LINKAGE_FEATURES if extra_linkage else [])
    # One float block (a dict of 60 one-row columns costs milliseconds per request).
    values = np.column_stack([np.asarray(feats[k], dtype=float) for k in names])
    return pd.DataFrame(values, columns=pd.Index(names))


def _linkage(
    graph: LinkageGraph,
    node: np.ndarray,
    cust: np.ndarray,
    t_s: np.ndarray,
    signup_s: np.ndarray,
    index: HistoryIndex,
    extra: bool,
) -> dict:
    """Neighbour and component features of each request's account, as of its time."""
    n = len(node)
    out: dict[str, np.ndarray] = {}
    r_idx, c_idx, l_idx, od_idx = index.r_idx, index.c_idx, index.l_idx, index.od_idx
    flag_s = index.flag_seconds(graph)
    q, nb = _explode(graph.adjacency, node)
    alive = graph.signup_s[nb] < t_s[q]
    q, nb = q[alive], nb[alive]
    deg = np.bincount(q, minlength=n).astype(float)
    out["degree"] = deg
    for kind in ID_KINDS:
        qk, nk = _explode(graph.by_kind[kind], node)
        ak = graph.signup_s[nk] < t_s[qk]
        out[f"n_shared_{_ID_SHORT[kind]}"] = np.bincount(qk[ak], minlength=n).astype(float)
    nb_flag = (flag_s[nb] < t_s[q]).astype(float)
    nb_fraud = np.bincount(q, weights=nb_flag, minlength=n)
    size, comp_fraud = _component_sweep(graph, node, t_s, flag_s)
    own_flag = (flag_s[node] < t_s).astype(float)
    out["component_size"] = size
    out["nb_fraud_accounts"] = nb_fraud
    out["nb_fraud_rate"] = nb_fraud / np.maximum(deg, 1.0)
    out["component_fraud_accounts"] = np.maximum(comp_fraud - own_flag, 0.0)
    burst = np.abs(graph.signup_s[nb] - signup_s[q]) <= BURST_DAYS * 86_400
    out["nb_burst"] = np.bincount(q, weights=burst.astype(float), minlength=n)
    nb_cust = graph.customer_ids[nb]
    out["nb_returns"] = np.bincount(q, weights=r_idx.count(nb_cust, t_s[q]), minlength=n)
    out["nb_hv_returns"] = np.bincount(q, weights=r_idx.sum("hv", nb_cust, t_s[q]), minlength=n)
    out["nb_claims"] = np.bincount(q, weights=c_idx.count(nb_cust, t_s[q]), minlength=n)
    out["nb_unexplained_claims"] = np.bincount(
        q, weights=c_idx.sum("unexplained", nb_cust, t_s[q]), minlength=n
    )
    out["nb_fraud_labels"] = np.bincount(
        q, weights=l_idx.sum("fraud", nb_cust, t_s[q]), minlength=n
    )
    if not extra:
        return out
    # Strong edges (not address) and per-kind neighbour fraud.
    strong_deg = np.zeros(n)
    strong_fraud = np.zeros(n)
    strong_pairs = set()
    for kind in STRONG_KINDS:
        qk, nk = _explode(graph.by_kind[kind], node)
        ak = graph.signup_s[nk] < t_s[qk]
        qk, nk = qk[ak], nk[ak]
        fk = (flag_s[nk] < t_s[qk]).astype(float)
        if kind == C.DEVICE_ID:
            out["nb_device_fraud"] = np.bincount(qk, weights=fk, minlength=n)
        if kind == C.PAYMENT_FINGERPRINT:
            out["nb_payment_fraud"] = np.bincount(qk, weights=fk, minlength=n)
        strong_pairs.update(zip(qk.tolist(), nk.tolist(), strict=True))
    if strong_pairs:
        sq, sn = np.array(sorted(strong_pairs), dtype=np.int64).T
        strong_deg = np.bincount(sq, minlength=n).astype(float)
        strong_fraud = np.bincount(sq, weights=(flag_s[sn] < t_s[sq]).astype(float), minlength=n)
    out["strong_degree"] = strong_deg
    out["nb_strong_fraud_accounts"] = strong_fraud
    # Two hops: accounts reached through an existing neighbour, neither the account
    # itself nor a direct neighbour; both hops must exist at the request time.
    p2, w = _explode(graph.adjacency, nb)
    q2 = q[p2]
    a2 = (graph.signup_s[w] < t_s[q2]) & (w != node[q2])
    q2, w = q2[a2], w[a2]
    big = np.int64(len(graph.customer_ids) + 1)
    key2 = np.unique(q2.astype(np.int64) * big + w)
    key2 = key2[~np.isin(key2, q.astype(np.int64) * big + nb)]
    q2, w = key2 // big, key2 % big
    out["hop2_accounts"] = np.bincount(q2, minlength=n).astype(float)
    out["hop2_fraud_accounts"] = np.bincount(
        q2, weights=(flag_s[w] < t_s[q2]).astype(float), minlength=n
    )
    # Neighbours' claim behaviour and label outcomes.
    nb_deliv = np.bincount(q, weights=od_idx.count(nb_cust, t_s[q]), minlength=n)
    out["nb_claim_rate"] = out["nb_claims"] / (nb_deliv + 2.0)
    out["nb_fast_claims"] = np.bincount(q, weights=c_idx.sum("fast", nb_cust, t_s[q]), minlength=n)
    nb_labels = np.bincount(q, weights=l_idx.count(nb_cust, t_s[q]), minlength=n)
    out["nb_fraud_label_rate"] = out["nb_fraud_labels"] / (nb_labels + 1.0)
    out["component_fraud_share"] = out["component_fraud_accounts"] / np.maximum(size, 1.0)
    return out


def label_of(requests: pd.DataFrame) -> np.ndarray:
    """The training label of offline request rows (``confirmed_fraud``)."""
    return requests[C.CONFIRMED_FRAUD].to_numpy(dtype=bool)


__all__ = [
    "BASE_FEATURES",
    "FEATURE_NAMES",
    "HASH_COLUMNS",
    "EXTRA_LINKAGE_FEATURES",
    "LINKAGE_FEATURES",
    "FraudHistory",
    "FraudRequestError",
    "LinkageGraph",
    "all_requests",
    "build_history",
    "claim_requests",
    "fraud_features",
    "return_requests",
    "validate_requests",
]
