"""One timestamp parser for every model: spellings, zones, missing and unreadable values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd

from ppx.data.times import unreadable, utc_times

NOON = np.datetime64("2025-11-20T12:00:00", "ns")


def test_every_iso_spelling_in_one_batch_keeps_its_own_moment():
    raw = [
        "2025-11-20T12:00:00Z",
        "2025-11-20T12:00:00",
        "2025-11-20 12:00:00.000000",
        "2025-11-20T14:00:00+02:00",  # an offset: converted to UTC
        "2025-11-20T07:00:00-05:00",
    ]
    assert (utc_times(raw) == NOON).all()


def test_missing_values_are_nat_and_unreadable_ones_are_flagged():
    raw = pd.Series(["2025-11-20T12:00:00", None, "next tuesday", float("nan"), ""])
    parsed = utc_times(raw)
    assert parsed[0] == NOON
    assert np.isnat(parsed[1:]).all()
    assert unreadable(raw, parsed).tolist() == [False, False, True, False, True]


def test_other_formats_are_guessed_per_value_not_from_the_first():
    parsed = utc_times(["2025-11-20T12:00:00", "11/20/2025 12:00", "20 Nov 2025 12:00"])
    assert (parsed == NOON).all()


def test_objects_and_datetime64_columns():
    naive = pd.Timestamp("2025-11-20 12:00")
    aware = datetime(2025, 11, 20, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert (utc_times([naive, naive.to_pydatetime()]) == NOON).all()
    assert np.isnat(utc_times([naive, pd.NaT, None])[1:]).all()
    assert utc_times([aware])[0] == NOON
    assert utc_times([datetime(2025, 11, 20, 12, tzinfo=UTC), None])[0] == NOON
    col = pd.Series(pd.to_datetime(["2025-11-20 12:00", None]))
    out = utc_times(col)
    assert out.dtype == np.dtype("datetime64[ns]") and out[0] == NOON and np.isnat(out[1])
    assert not unreadable(col, out).any()


def test_dates_numpy_cannot_hold_are_unreadable_not_wrapped():
    raw = ["9999-12-31", "1677-01-01", "3000-01-01T00:00:00+01:00", "2025-11-20T12:00:00"]
    parsed = utc_times(raw)
    assert np.isnat(parsed[:3]).all() and parsed[3] == NOON  # numpy alone gives 1816, 2261
    assert unreadable(raw, parsed).tolist() == [True, True, True, False]


def test_a_list_mixing_strings_and_nan_keeps_nan_missing():
    raw = ["2025-11-20T12:00:00", float("nan")]
    parsed = utc_times(raw)
    assert parsed[0] == NOON and np.isnat(parsed[1])
    assert not unreadable(raw, parsed).any()
