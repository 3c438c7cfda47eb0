"""Checks on request rows before scoring: clear messages naming field and rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ppx.data import columns as C
from ppx.data.errors import RequestError
from ppx.data.times import unreadable, utc_times
from ppx.features.fraud.history import FraudHistory
from ppx.features.fraud.names import CLAIM, KIND, KINDS, REQUIRED_COLUMNS
from ppx.features.identity import (
    ID_KINDS,
)

if TYPE_CHECKING:
    from ppx.features.fraud.index import FraudHistoryIndex


class FraudRequestError(RequestError):
    """A request row cannot be scored; the message names the field and the rows."""


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


def request_columns(requests: pd.DataFrame | Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Request rows as columns (field -> one flat array), from a frame or a mapping.

    A mapping is what the model service passes (field -> one JSON value per request):
    a list without missing values becomes a typed array (numbers, booleans, text), one
    with ``None`` an object array, so the checks and features read the same values a
    frame of the same rows would give them, without building the frame.

    Raises:
        FraudRequestError: not a frame or mapping, no rows, or columns of unequal length.
    """
    if isinstance(requests, pd.DataFrame):
        cols = {c: requests[c].to_numpy() for c in requests.columns}
    elif isinstance(requests, Mapping):
        cols = {c: _array(v) for c, v in requests.items()}
    else:
        raise FraudRequestError("requests must be a pandas DataFrame, one row per request")
    sizes = {len(v) for v in cols.values()}
    if len(sizes) > 1:
        raise FraudRequestError(f"request columns of unequal length: {sorted(sizes)}")
    if sizes == {0} or (isinstance(requests, pd.DataFrame) and len(requests) == 0):
        raise FraudRequestError("no requests: the frame is empty")
    return cols


def _array(values: Any) -> np.ndarray:
    """One field's values as a flat array (typed unless a value is missing)."""
    if isinstance(values, pd.Series):
        return values.to_numpy()
    if isinstance(values, np.ndarray):
        return values.reshape(-1)
    if not isinstance(values, (list, tuple)):
        values = [values]
    if any(_missing(v) for v in values):
        return np.asarray(values, dtype=object)
    return np.asarray(values)


def numbers(values: np.ndarray) -> np.ndarray:
    """A column as floats; what is not a number becomes NaN (``pd.to_numeric`` coercion)."""
    if values.dtype.kind in "fiub":
        return values.astype(float)
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def validate_requests(
    requests: pd.DataFrame, history: FraudHistory, index: FraudHistoryIndex | None = None
) -> pd.DataFrame:
    """Check raw request rows; return a copy with typed columns or raise a clear error.

    The frame form of :func:`validate_columns` (same checks, same typed values).
    """
    if not isinstance(requests, pd.DataFrame):
        raise FraudRequestError("requests must be a pandas DataFrame, one row per request")
    return pd.DataFrame(validate_columns(request_columns(requests), history, index=index))


def validate_columns(
    columns: Mapping[str, np.ndarray],
    history: FraudHistory,
    index: FraudHistoryIndex | None = None,
) -> dict[str, np.ndarray]:
    """Check request columns (:func:`request_columns`); return them typed or raise.

    The checks run on plain numpy arrays (one request costs well under a millisecond);
    the returned columns have ``kind`` lower-case, ``customer_id`` int64, numbers float,
    times ``datetime64[ns]`` (UTC, naive); other columns are passed through.

    Raises:
        FraudRequestError: a required column is missing, ``kind`` is not
            ``return``/``claim``, an amount is negative or not a number, a time is
            missing or unparsable, the customer is unknown and no identity was given,
            a return precedes its delivery, or a claim precedes its order or cites a
            delivered scan from after the claim.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise FraudRequestError(
            f"missing required column(s) {missing}; every request needs {list(REQUIRED_COLUMNS)}"
        )
    cols = dict(columns)
    out: dict[str, np.ndarray] = dict(cols)
    raw_kind = out[KIND]
    kind = np.array(
        [("" if _missing(v) else str(v)).strip().lower() for v in raw_kind], dtype=object
    )
    bad = np.array([k not in KINDS for k in kind], dtype=bool)
    if bad.any():
        vals = raw_kind[bad][:3].tolist()
        raise FraudRequestError(
            f"field {KIND!r} must be 'return' or 'claim'; got {vals} at rows {_rows(bad)}"
        )
    out[KIND] = kind
    cid = numbers(cols[C.CUSTOMER_ID])
    bad = np.isnan(cid)
    if bad.any():
        raise FraudRequestError(f"field {C.CUSTOMER_ID!r} must be an integer id; rows {_rows(bad)}")
    out[C.CUSTOMER_ID] = cid.astype(np.int64)
    amt = numbers(cols[C.AMOUNT])
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
                    f"{raw[unparsable][:3].tolist()}"
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
            v = numbers(cols[col])
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
        pid = numbers(cols[C.PRODUCT_ID])
        has = ~is_claim & ~np.isnan(pid)
        pid_i = np.where(has, pid, -1).astype(np.int64)
        if index is not None:
            listed = index.product_lookup.contains(pid_i)
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
            given_but_not_allowed = [not _missing(x) and str(x) not in allowed for x in out[col]]
            bad = rows & np.array(given_but_not_allowed, dtype=bool)
            if bad.any():
                raise FraudRequestError(
                    f"field {col!r} must be one of {list(allowed)} at rows {_rows(bad)}"
                )
    return out
