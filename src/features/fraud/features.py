"""The feature function: request rows plus a history in, a numeric frame out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.features.fraud.asof import to_seconds
from ppx.features.fraud.history import FraudHistory
from ppx.features.fraud.index import FraudHistoryIndex
from ppx.features.fraud.linkage import LinkageGraph, linkage_features
from ppx.features.fraud.names import (
    CLAIM,
    DEADLINE_SLACK_DAYS,
    EXCEPTION_SCAN,
    EXTRA_LINKAGE_FEATURES,
    FAR_GPS_M,
    FEATURE_NAMES,
    HIGH_VALUE,
    KIND,
    LAG_BIN_FEATURES,
    LAG_BINS,
    LATE_WINDOW_DAYS,
    RETURN_DEADLINE_DAYS,
    RING_WINDOW_DAYS,
)
from ppx.features.fraud.validation import (
    FraudRequestError,
    numbers,
    request_columns,
    validate_columns,
)
from ppx.features.identity import (
    DEFAULT_SALT,
    hash_identities,
    salt_digest,
)


def _finite(x: np.ndarray) -> np.ndarray:
    """``np.nan_to_num(x)``, without its copies when every value is finite (the usual case)."""
    return x if np.isfinite(x).all() else np.nan_to_num(x)


def _new_accounts(req: dict, salt: str, known: np.ndarray) -> pd.DataFrame | None:
    """The hashed identity of accounts only the requests know (None when there are none)."""
    if known.all():
        return None
    req = pd.DataFrame(req)
    new = req.loc[~known].drop_duplicates(C.CUSTOMER_ID).copy()
    if C.SIGNUP_AT not in new.columns:
        new[C.SIGNUP_AT] = pd.NaT
    first_t = req.loc[~known].groupby(C.CUSTOMER_ID)[C.REQUESTED_AT].min()
    sign = new[C.SIGNUP_AT].fillna(new[C.CUSTOMER_ID].map(first_t) - pd.Timedelta(seconds=1))
    new[C.SIGNUP_AT] = sign
    return hash_identities(new, salt=salt)


def fraud_features(
    requests: pd.DataFrame | Mapping[str, Any],
    history: FraudHistory,
    salt: str = DEFAULT_SALT,
    graph: LinkageGraph | None = None,
    extra_linkage: bool = False,
    index: FraudHistoryIndex | None = None,
    as_frame: bool = True,
) -> pd.DataFrame | np.ndarray:
    """Raw request rows -> numeric features (:data:`FEATURE_NAMES`), as of request time.

    The same call builds one online request and a training frame of tens of
    thousands of rows; nothing later than a row's ``requested_at`` is used, and a
    row's own label never enters its features.

    Args:
        requests: one row per request (columns in :data:`REQUIRED_COLUMNS`,
            :data:`OPTIONAL_COLUMNS` and, for new accounts, :data:`IDENTITY_COLUMNS`),
            as a frame or as columns (field -> one value per request: what the model
            service passes, so a request is scored without building a frame).
        history: event history (offline from the tables, online the logged snapshot).
        salt: identifier hashing salt; must match the one used for ``history``.
        graph: a prebuilt graph of ``history.identities`` (reused across calls when no
            request introduces a new account).
        extra_linkage: also return :data:`EXTRA_LINKAGE_FEATURES` (ablations only).
        index: a prebuilt :class:`FraudHistoryIndex` of ``history`` (the served scorer keeps
            one); built here when missing.
        as_frame: a frame with named columns (default), or the bare float matrix in
            :data:`FEATURE_NAMES` order (the serving path, which feeds it to the network).

    Raises:
        FraudRequestError: malformed requests (see :func:`validate_requests`).
    """
    if history.meta.get("salt_digest") not in (None, salt_digest(salt)):
        raise FraudRequestError("identifier salt differs from the one the history was hashed with")
    if index is None or index.history is not history:
        index = FraudHistoryIndex(history)
    req = validate_columns(request_columns(requests), history, index=index)
    n = len(req[KIND])
    t_s, _ = to_seconds(req[C.REQUESTED_AT])
    is_claim = req[KIND] == CLAIM
    feats: dict[str, np.ndarray] = {}

    def col(name, default=np.nan, dtype=float):
        if name in req:
            v = numbers(req[name])
            return np.where(np.isnan(v), default, v).astype(dtype)
        return np.full(n, default, dtype=dtype)

    def tcol(name):
        if name in req:
            return to_seconds(req[name])
        return np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)

    cust = req[C.CUSTOMER_ID].astype(np.int64)
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
    discount = _finite(col(C.DISCOUNT, 0.0))
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
    # Each index is searched once per (rows, times, window); the counts and sums read the
    # same slices.
    w90 = 90 * 86_400
    orders = index.o_idx.at(cust, t_s)
    items = index.i_idx.at(cust, t_s)
    rets = index.r_idx.at(cust, t_s)
    claims = index.c_idx.at(cust, t_s)
    labels = index.l_idx.at(cust, t_s)
    n_orders = orders.count()
    n_items = items.count()
    n_deliv = index.od_idx.count(cust, t_s)
    n_ret = rets.count()
    n_hv = rets.sum("hv")
    n_lw = rets.sum("lw")
    n_cl = claims.count()
    feats["n_orders"] = n_orders
    feats["spend_log"] = np.log1p(orders.sum("value"))
    feats["n_orders_90d"] = index.o_idx.count(cust, t_s, w90)
    feats["n_items_delivered"] = n_items
    feats["n_returns"] = n_ret
    feats["return_rate"] = n_ret / (n_items + 2.0)
    feats["n_returns_90d"] = index.r_idx.count(cust, t_s, w90)
    feats["n_hv_returns"] = n_hv
    feats["hv_return_rate"] = n_hv / (n_items + 2.0)
    feats["n_late_window_returns"] = n_lw
    feats["late_window_share"] = n_lw / (n_ret + 1.0)
    feats["mean_return_lag"] = rets.sum("lag") / np.maximum(n_ret, 1.0)
    feats["n_claims"] = n_cl
    feats["claim_rate"] = n_cl / (n_deliv + 2.0)
    feats["n_unexplained_claims"] = claims.sum("unexplained")
    feats["n_fast_claims"] = claims.sum("fast")
    feats["n_labels_known"] = labels.count()
    feats["own_fraud_known"] = labels.sum("fraud")
    n_durable = items.sum("durable")
    feats["premium_item_share"] = items.sum("premium") / (n_items + 2.0)
    feats["mean_item_price_log"] = items.sum("price_log") / np.maximum(n_items, 1.0)
    feats["n_durable_items"] = n_durable
    feats["durable_return_rate"] = rets.sum("durable") / (n_durable + 2.0)
    feats["n_durable_kept"] = index.kept_idx.sum("kept", cust, t_s)

    # --- item and category base rates ------------------------------------------------
    pid = col(C.PRODUCT_ID, -1.0)
    has_item = ~is_claim & (pid >= 0)
    pid_i = np.where(has_item, pid, -1).astype(np.int64)
    price, req_cat = index.product(pid_i)
    price0 = _finite(price)
    cat_code = index.cat_code
    ci_idx, cr_idx, pi_idx, pr_idx = index.ci_idx, index.cr_idx, index.pi_idx, index.pr_idx
    cat_items = ci_idx.count(req_cat, t_s)
    cat_rets = cr_idx.count(req_cat, t_s)
    prior = 0.06
    cat_rate = (cat_rets + prior * 50) / (cat_items + 50)
    p_items = pi_idx.count(np.maximum(pid_i, 0), t_s)
    p_rets = pr_idx.count(np.maximum(pid_i, 0), t_s)
    feats["item_price_log"] = np.where(has_item, np.log1p(price0), 0.0)
    feats["refund_to_price"] = np.where(
        has_item & (price > 0), amount / np.where(price > 0, price, 1.0), 0.0
    )
    feats["category_return_rate"] = np.where(has_item & (req_cat >= 0), cat_rate, 0.0)
    feats["product_return_rate"] = np.where(
        has_item, (p_rets + cat_rate * 20) / (p_items + 20), 0.0
    )
    # One-hot columns come from one broadcast comparison (the same values as a comparison
    # per column, in a few calls instead of dozens for a request).
    codes = np.fromiter(cat_code.values(), dtype=np.int64)
    cat_hot = (has_item[:, None] & (req_cat[:, None] == codes)).astype(float)
    for j, c in enumerate(cat_code):
        feats[f"cat_{c}"] = cat_hot[:, j]

    # --- return facts ---------------------------------------------------------------------
    ret_lag = np.where(~is_claim & del_ok, (t_s - del_s) / day, 0.0)
    feats["return_lag_days"] = ret_lag
    feats["late_window_return"] = (~is_claim & (ret_lag >= LATE_WINDOW_DAYS)).astype(float)
    # Wardrobing is "use it, then return it late": durable goods near the window's end.
    durable = feats["cat_equipment"] + feats["cat_merch"]
    feats["late_window_durable"] = feats["late_window_return"] * durable
    deadline = RETURN_DEADLINE_DAYS - DEADLINE_SLACK_DAYS
    feats["at_return_deadline"] = (~is_claim & del_ok & (ret_lag >= deadline)).astype(float)
    feats["high_value_item"] = (has_item & (price0 > HIGH_VALUE)).astype(float)
    is_ret = (~is_claim).astype(float)
    edges = (*LAG_BINS[1:], deadline)  # deadline returns have their own feature
    lag = ret_lag[:, None]
    in_bin = is_ret[:, None] * ((lag >= np.array(LAG_BINS)) & (lag < np.array(edges)))
    bin_durable = in_bin * durable[:, None]
    bin_other = in_bin * (1 - durable)[:, None]
    for j, name in enumerate(LAG_BIN_FEATURES[::2]):
        feats[name] = bin_durable[:, j]
        feats[name.replace("_durable", "_other")] = bin_other[:, j]
    feats["lag_x_durable"] = ret_lag * durable
    feats["late_window_history_durable"] = n_lw * durable
    feats["early_high_value_return"] = (
        is_ret * (ret_lag < RING_WINDOW_DAYS) * feats["high_value_item"]
    )
    reason = (
        np.asarray(req[C.REASON], dtype=object)
        if C.REASON in req
        else np.full(n, None, dtype=object)
    )
    reasons = np.array(C.RETURN_REASONS, dtype=object)
    reason_hot = (~is_claim[:, None] & (reason[:, None] == reasons)).astype(float)
    for j, r in enumerate(C.RETURN_REASONS):
        feats[f"reason_{r}"] = reason_hot[:, j]

    # --- the kind of fraud already known, and requests still under investigation --------
    fraud_late = labels.sum("fraud_late")
    fraud_early = labels.sum("fraud_early")
    fraud_claims = labels.sum("fraud_claim")
    feats["own_fraud_late_returns"] = fraud_late
    feats["own_fraud_early_returns"] = fraud_early
    feats["own_fraud_claims"] = fraud_claims
    feats["known_wardrobe_match"] = (fraud_late > 0) * feats["late_window_durable"]
    feats["known_ring_match"] = (fraud_early + fraud_claims > 0) * feats["early_high_value_return"]
    pending = index.label_delay_s
    pending_rets = index.r_idx.at(cust, t_s, pending)
    feats["n_pending_returns"] = pending_rets.count()
    feats["n_pending_late_durable"] = pending_rets.sum("lw_durable")

    # --- claim evidence ---------------------------------------------------------------
    gps = _finite(col(C.GPS_DISTANCE_M, 0.0))  # missing: 0, as nan_to_num would make it
    scan = is_claim & del_ok
    feats["delivered_scan"] = scan.astype(float)
    sig = col(C.SIGNATURE, 0.0)
    feats["signature"] = (is_claim & scan & (_finite(sig) > 0)).astype(float)
    feats["gps_distance_log"] = np.where(scan, np.log1p(gps), 0.0)
    feats["gps_far"] = (scan & (gps > FAR_GPS_M)).astype(float)
    feats["hours_since_delivery"] = np.where(
        scan, np.clip((t_s - del_s) / 3600.0, 0, 24 * 60), -1.0
    )
    exc = col(EXCEPTION_SCAN, 0.0)
    feats["exception_scan"] = (is_claim & (_finite(exc) > 0)).astype(float)
    ctype = (
        np.asarray(req[C.CLAIM_TYPE], dtype=object)
        if C.CLAIM_TYPE in req
        else np.full(n, "item_not_received", dtype=object)
    )
    feats["claim_not_received"] = (is_claim & (ctype != "damaged_in_transit")).astype(float)

    # --- linkage --------------------------------------------------------------------------
    feats.update(linkage_features(graph, node, cust, t_s, signup_s, index, extra_linkage))
    names = FEATURE_NAMES + (EXTRA_LINKAGE_FEATURES if extra_linkage else [])
    # One float block (a dict of 100 one-row columns costs milliseconds per request); one
    # array call over the columns, then rows made contiguous (a quarter of column_stack).
    values = np.ascontiguousarray(np.array([feats[k] for k in names], dtype=float).T)
    return pd.DataFrame(values, columns=pd.Index(names)) if as_frame else values
