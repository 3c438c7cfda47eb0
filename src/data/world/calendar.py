"""The simulation's day grid: demand weights, peak season and holidays."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.data.world.params import WorldParams

HOLIDAYS_MD = ((1, 1), (2, 14), (5, 12), (12, 24), (12, 25), (12, 26), (12, 31))


class Calendar:
    """Day grid of the simulation with demand weights and holiday flags."""

    def __init__(self, p: WorldParams):
        self.t0 = pd.Timestamp(p.start)
        first = self.t0 - pd.DateOffset(months=p.signup_lead_months)
        self.month_starts = np.array(
            [(self.t0 + pd.DateOffset(months=m) - self.t0).days for m in range(p.months + 1)],
            dtype=float,
        )
        self.lead_days = float((self.t0 - first).days)
        n_days = int(self.month_starts[-1]) + 60
        dates = self.t0 + pd.to_timedelta(np.arange(n_days), unit="D")
        self.dates = dates
        dow = dates.day_of_week.to_numpy()
        md = list(zip(dates.month, dates.day, strict=True))
        self.is_holiday = np.array([x in HOLIDAYS_MD for x in md])
        self.is_peak = np.array([(m == 11 and d >= 20) or (m == 12 and d <= 23) for m, d in md])
        self.dow = dow
        self.demand = np.asarray(p.weekday_demand)[dow] * (1.0 + p.holiday_boost * self.is_peak)
        # Black Friday: the Friday in Nov 23-29.
        bf = (dates.month == 11) & (dates.day >= 23) & (dates.day <= 29) & (dow == 4)
        self.demand = self.demand * np.where(bf, 2.5, 1.0)

    def month_days(self, m: int) -> np.ndarray:
        return np.arange(int(self.month_starts[m]), int(self.month_starts[m + 1]))

    def month_of(self, t: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.month_starts, t, side="right") - 1


def days_to_ts(t0: pd.Timestamp, t: np.ndarray) -> pd.Series:
    """Float days since ``t0`` -> timestamps at second precision; NaN becomes NaT."""
    t = np.asarray(t, dtype=float)
    secs = np.round(t * 86_400)
    mask = np.isnan(secs)
    ns = np.where(mask, 0, secs).astype(np.int64) * 10**9
    out = pd.Series(pd.to_datetime(t0.value + ns, unit="ns"))
    out[mask] = pd.NaT
    return out.astype("datetime64[ns]")
