"""Timestamps as callers send them -> naive UTC ``datetime64[ns]``, one parser for all.

Requests arrive as JSON, so timestamps are mostly ISO-8601 strings (``...Z``, an offset,
or none); offline callers pass ``datetime64`` columns or ``Timestamp`` objects. Every
model parses them the same way:

* ``datetime64`` columns pass through; naive ISO strings (``Z`` or no zone) and naive
  datetime objects go straight to numpy: pandas would guess a format on every call,
  which cost more than the whole delivery network on the serving path;
* everything else goes to pandas as ISO-8601 in any spelling (offsets converted to
  UTC), and only what still fails gets pandas' per-value guess (``11/03/2025``). A
  format guessed from the first value would silently turn differently spelled requests
  merged into one batch into NaT;
* missing values become NaT; so do values that cannot be read, and
  :func:`unreadable` finds those so the caller can name its field in the error.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd


def utc_times(values: Any) -> np.ndarray:
    """Timestamps (strings, datetime objects, ``datetime64``, None) -> naive UTC
    ``datetime64[ns]``; missing and unreadable values are NaT."""
    arr = _array(values)
    if arr.dtype.kind == "M":
        return _in_range(arr)
    if arr.dtype.kind in "OU" and len(arr):
        fast = _naive_fast(arr)
        if fast is not None:
            return fast
    raw = pd.Series(arr, dtype=object)
    parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    out = _in_range(parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[us]"))
    for i in np.flatnonzero(np.isnat(out) & raw.notna().to_numpy()):
        guess = pd.to_datetime(raw.iloc[i], errors="coerce", utc=True)
        if not pd.isna(guess):
            out[i] = _in_range(np.array([guess.tz_localize(None).to_datetime64()]))[0]
    return out


#: what datetime64[ns] can hold; a value outside becomes NaT (and so unreadable), never a
#: silently wrapped date (numpy turns 9999-12-31 into 1816)
_LOW, _HIGH = np.datetime64("1677-09-22", "us"), np.datetime64("2262-04-11", "us")


def _in_range(times: np.ndarray) -> np.ndarray:
    """Any-unit datetime64 -> datetime64[ns], NaT where [ns] cannot hold the value
    (parsed at microseconds, so a nanosecond digit of a string is dropped)."""
    if times.dtype == np.dtype("datetime64[ns]"):
        return times
    coarse = times.astype("datetime64[us]")
    ok = (coarse >= _LOW) & (coarse <= _HIGH)
    return np.where(ok, coarse, np.datetime64("NaT", "us")).astype("datetime64[ns]")


def _array(values: Any) -> np.ndarray:
    """One flat array; lists stay objects (numpy would turn NaN beside a string into
    the text "nan")."""
    if isinstance(values, pd.Series):
        arr = values.to_numpy()
    elif isinstance(values, np.ndarray):
        arr = values
    else:
        arr = np.asarray(values, dtype=object)
        if len(arr) and all(isinstance(v, np.datetime64) for v in arr.reshape(-1)):
            arr = arr.astype("datetime64[ns]")
    return arr.reshape(-1)


def unreadable(values: Any, parsed: np.ndarray) -> np.ndarray:
    """Which values were given (not None / NaN / NaT) but did not parse."""
    nat = np.isnat(parsed)
    if not nat.any():  # the usual case, and on the serving path: skip the object scan
        return nat
    return nat & ~pd.isna(_array(values))


def _naive_fast(arr: np.ndarray) -> np.ndarray | None:
    """numpy's parse of naive ISO strings / naive datetime objects, or None when any
    value needs pandas (an offset, another format, a zone-aware object, NaN)."""
    try:
        if all(isinstance(v, str) or v is None for v in arr):
            # None is numpy's "NaT"; "Z" is UTC, as naive values are
            vals = ["NaT" if s is None else s[:-1] if s.endswith("Z") else s for s in arr]
            if any("+" in v[10:] or "-" in v[10:] for v in vals):
                return None
            return _in_range(
                np.asarray([v.replace(" ", "T") for v in vals], dtype="datetime64[us]")
            )
        if all(v is None or (isinstance(v, datetime) and v.tzinfo is None) for v in arr):
            # pd.NaT is a datetime too; numpy cannot read it, so missing values go first
            missing = np.datetime64("NaT", "us")
            return _in_range(
                np.array(
                    [missing if v is None or v is pd.NaT else np.datetime64(v, "us") for v in arr],
                    dtype="datetime64[us]",
                )
            )
    except ValueError:  # not ISO: let pandas try (and report)
        return None
    return None
