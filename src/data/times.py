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
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    arr = arr.reshape(-1)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]")
    if arr.dtype.kind in "OU" and len(arr):
        fast = _naive_fast(arr)
        if fast is not None:
            return fast
    raw = pd.Series(arr, dtype=object)
    parsed = pd.to_datetime(raw, errors="coerce", utc=True, format="ISO8601")
    out = parsed.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]")
    for i in np.flatnonzero(np.isnat(out) & raw.notna().to_numpy()):
        guess = pd.to_datetime(raw.iloc[i], errors="coerce", utc=True)
        if not pd.isna(guess):
            out[i] = guess.tz_localize(None).to_datetime64()
    return out


def unreadable(values: Any, parsed: np.ndarray) -> np.ndarray:
    """Which values were given (not None / NaN / NaT) but did not parse."""
    nat = np.isnat(parsed)
    if not nat.any():  # the usual case, and on the serving path: skip the object scan
        return nat
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    return nat & ~pd.isna(arr.reshape(-1))


def _naive_fast(arr: np.ndarray) -> np.ndarray | None:
    """numpy's parse of naive ISO strings / naive datetime objects, or None when any
    value needs pandas (an offset, another format, a zone-aware object, NaN)."""
    try:
        if all(isinstance(v, str) or v is None for v in arr):
            # None is numpy's "NaT"; "Z" is UTC, as naive values are
            vals = ["NaT" if s is None else s[:-1] if s.endswith("Z") else s for s in arr]
            if any("+" in v[10:] or "-" in v[10:] for v in vals):
                return None
            return np.asarray([v.replace(" ", "T") for v in vals], dtype="datetime64[ns]")
        if all(v is None or (isinstance(v, datetime) and v.tzinfo is None) for v in arr):
            # pd.NaT is a datetime too; numpy cannot read it, so missing values go first
            missing = np.datetime64("NaT", "ns")
            return np.array(
                [missing if v is None or v is pd.NaT else np.datetime64(v, "ns") for v in arr],
                dtype="datetime64[ns]",
            )
    except ValueError:  # not ISO: let pandas try (and report)
        return None
    return None
