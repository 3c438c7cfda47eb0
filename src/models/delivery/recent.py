"""Promises from recently *completed* deliveries.

Only deliveries that have completed before the decision moment are known then. Taking
the ones completed in the last ``window_days`` (by delivery date, whatever their
purchase date) follows a change in delivery speed within a few weeks, where a window
of recent *purchases* must wait for their slow tail to resolve. The sample is not the
delivery-time distribution of any purchase cohort (a speed-up fills it with fast recent
parcels, a slow-down with late old ones), so the quantile level that gives a target
on-time rate is chosen on validation months, not assumed to be the target itself.

* :func:`recent_quantile_promises`: the ``recent_quantile`` baseline - promise = the
  ``q``-quantile of the delivery days of the orders delivered in the 28 days before
  purchase.
* :func:`recent_residual_promises`: the same recalibration on top of a model - promise
  = the model's own day ``anchor`` plus the ``q``-quantile of ``days - anchor`` over the
  recently completed orders (each with the anchor it was given at its own purchase).
* :func:`recent_on_time_rate`: the retailer's own recent on-time rate before each
  moment - the share kept among the promises whose outcome became known in the last
  ``window_days`` (a delivery, or a promised day that ended without one).
"""

from __future__ import annotations

import numpy as np

WINDOW_DAYS = 28
MIN_COMPLETED = 30  # fewer completed deliveries in the window: fall back to d_max


def recent_completed_quantiles(
    values: np.ndarray,
    delivered_at: np.ndarray,
    at: np.ndarray,
    qs,
    window_days: int = WINDOW_DAYS,
    min_completed: int = MIN_COMPLETED,
) -> np.ndarray:
    """``(len(at), len(qs))`` quantiles of ``values`` over the orders delivered in
    ``[at - window_days, at)``; NaN rows where fewer than ``min_completed`` were.

    Quantiles are order statistics (``inverted_cdf``): a value some order really took.
    Orders without a delivery date or without a finite value are never in a window.
    """
    v = np.asarray(values, float)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    ok = ~np.isnat(dl) & np.isfinite(v)
    order = np.argsort(dl[ok].astype(np.int64), kind="stable")
    times = dl[ok].astype(np.int64)[order]
    vals = v[ok][order]
    a = np.asarray(at, dtype="datetime64[ns]").astype(np.int64)
    w = np.int64(window_days) * np.int64(86_400 * 10**9)
    lo = np.searchsorted(times, a - w, side="left")
    hi = np.searchsorted(times, a, side="left")  # strictly before the decision moment
    qs = np.asarray(list(qs), float)
    out = np.full((len(a), len(qs)), np.nan)
    for i in np.flatnonzero(hi - lo >= min_completed):
        out[i] = np.quantile(vals[lo[i] : hi[i]], qs, method="inverted_cdf")
    return out


def recent_quantile_promises(
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    at: np.ndarray,
    qs,
    window_days: int = WINDOW_DAYS,
    d_max: int = 60,
) -> dict[float, np.ndarray]:
    """{q: promise days at each time of ``at``}: the q-quantile of the delivery days of
    the orders (``ordered_at`` / ``delivered_at``, all known orders) delivered in the
    ``window_days`` before; ``d_max`` where the window holds too few deliveries."""
    t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    day = np.int64(86_400 * 10**9)
    days = np.where(np.isnat(dl), np.nan, dl.astype(np.int64) // day - t // day).astype(float)
    days[days < 0] = np.nan  # delivered before purchase: a broken record
    qs = list(qs)
    qv = recent_completed_quantiles(days, dl, at, qs, window_days)
    qv = np.where(np.isnan(qv), d_max, np.clip(qv, 0, d_max))
    return {q: qv[:, j].astype(int) for j, q in enumerate(qs)}


def recent_residual_promises(
    anchor: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    qs,
    window_days: int = WINDOW_DAYS,
    d_max: int = 60,
) -> dict[float, np.ndarray]:
    """{q: promise days per order}: ``anchor + q-quantile of (days - anchor)`` over the
    orders delivered in the ``window_days`` before each order's purchase.

    ``anchor`` is the model's day for every order (known at its purchase); all three
    arrays are aligned. Orders without a finite anchor, and orders whose window holds
    too few deliveries, get ``d_max``.
    """
    t = np.asarray(ordered_at, dtype="datetime64[ns]")
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    day = np.int64(86_400 * 10**9)
    a = np.asarray(anchor, float)
    days = np.where(np.isnat(dl), np.nan, dl.astype(np.int64) // day - t.astype(np.int64) // day)
    days = np.where(days < 0, np.nan, days)  # delivered before purchase: a broken record
    qs = list(qs)
    res = recent_completed_quantiles(days - a, dl, t, qs, window_days)
    p = np.floor(a[:, None] + res + 1e-9)
    p = np.where(np.isfinite(p), np.clip(p, 0, d_max), d_max)
    return {q: p[:, j].astype(int) for j, q in enumerate(qs)}


def recent_on_time_rate(
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    promised_days: np.ndarray,
    at: np.ndarray,
    window_days: int = WINDOW_DAYS,
    min_known: int = MIN_COMPLETED,
    no_outcome: np.ndarray | None = None,
) -> np.ndarray:
    """The on-time rate of the promises (``promised_days`` after each purchase) whose
    outcome became known in ``[at - window_days, at)``; NaN where fewer than
    ``min_known`` did.

    An outcome is known when the parcel is delivered (kept iff on or before the
    promised day) or when the promised day ends without a delivery (missed - the
    moment a live system learns it, not when or whether the parcel finally arrives).
    Orders with a delivery date before the purchase, without a finite promise, or
    flagged in ``no_outcome`` (e.g. marked delivered without a date) never count.
    """
    t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    has = ~np.isnat(dl)
    dli = np.where(has, dl.astype(np.int64), np.iinfo(np.int64).max)
    est = np.asarray(promised_days, float)
    day = np.int64(86_400 * 10**9)
    ok = np.isfinite(est) & ~(has & (dli < t))
    if no_outcome is not None:
        ok &= ~np.asarray(no_outcome, bool)
    promise_end = (t // day + np.where(ok, est, 0).astype(np.int64) + 1) * day
    kept = dli < promise_end
    known_at = np.where(kept, dli, promise_end)[ok]
    order = np.argsort(known_at, kind="stable")
    times = known_at[order]
    cum = np.concatenate([[0.0], np.cumsum(kept[ok][order])])
    a = np.asarray(at, dtype="datetime64[ns]").astype(np.int64)
    w = np.int64(window_days) * day
    lo = np.searchsorted(times, a - w, side="left")
    hi = np.searchsorted(times, a, side="left")  # strictly before the decision moment
    n = hi - lo
    return np.where(n >= min_known, (cum[hi] - cum[lo]) / np.maximum(n, 1), np.nan)
