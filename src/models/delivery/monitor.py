"""Monitoring promises in production: realised on-time rate against the stated rate, and
input drift (``ppx monitor delivery``).

* :func:`on_time_by`: for promises already made, the realised on-time rate per group
  (carrier, lane) and purchase week, scored as known at ``now`` (a promise counts once
  its day has ended, so recent weeks are not flattered by their early deliveries), with
  a band around the stated rate - ``max(MIN_BAND, Z * binomial sd)`` - and an alert when
  the realised rate leaves it.
* :func:`~ppx.monitoring.psi` / :func:`~ppx.monitoring.feature_drift` (shared with the
  other models' monitors): population stability index per feature of recent requests
  against the training data (< 0.1 stable, 0.1-0.25 moderate, > 0.25 major).
* :func:`~ppx.monitoring.write_report`: both as one self-contained HTML page.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ppx.models.delivery.tradeoff import Outcomes
from ppx.monitoring import PSI_MAJOR, PSI_MODERATE, feature_drift, psi, write_report

__all__ = [
    "PSI_MAJOR",
    "PSI_MODERATE",
    "feature_drift",
    "on_time_by",
    "psi",
    "write_report",
]

MIN_BAND = 0.02  # never alert on less than 2 points
Z = 3.0  # binomial standard deviations of the band


def on_time_by(
    promises: pd.DataFrame,
    keys: list[str],
    now,
    ordered_col: str,
    delivered_col: str,
    promise_col: str = "promise_days",
    target_col: str = "promise_target",
) -> pd.DataFrame:
    """Realised vs stated on-time rate per ``keys`` x purchase week (from Monday).

    Columns: the keys, ``week``, ``scored`` (promises whose day ended by ``now``),
    ``realised``, ``stated`` (mean target), ``low`` / ``high`` (the band) and ``alert``.
    """
    o = Outcomes.at(
        promises[ordered_col].to_numpy(),
        promises[delivered_col].to_numpy(),
        np.datetime64(pd.Timestamp(now)),
        strict=True,
    )
    kept, scored = o.score(promises[promise_col].to_numpy())
    df = promises[keys].copy()
    df["week"] = promises[ordered_col].dt.to_period("W-SUN").dt.start_time.dt.date.astype(str)
    df["kept"], df["scored"] = kept, scored
    df["target"] = promises[target_col].to_numpy(float)
    df = df[df["scored"]]
    g = df.groupby([*keys, "week"], sort=True)
    out = g.agg(scored=("kept", "size"), realised=("kept", "mean"), stated=("target", "mean"))
    out = out.reset_index()
    sd = np.sqrt(out["stated"] * (1 - out["stated"]) / out["scored"])
    half = np.maximum(MIN_BAND, Z * sd)
    out["low"], out["high"] = out["stated"] - half, out["stated"] + half
    out["alert"] = (out["realised"] < out["low"]) | (out["realised"] > out["high"])
    return out
