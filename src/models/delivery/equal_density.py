"""Promises that spend the lateness budget where it is cheapest: equal density.

Giving every order the same quantile level ``q`` of its predicted delivery-day
distribution is not the shortest way to reach an overall on-time rate ``r``. Minimising
the mean promise ``sum_i t_i`` subject to ``sum_i F_i(t_i) >= N r`` has the Lagrangian
solution ``t_i = argmax_d F_i(d) - lambda d``: every order is promised up to the day
where one more day buys less than ``lambda`` on-time probability, i.e. where its
predicted density falls to a common ``lambda`` (equal *density*, not equal quantile).
An order with a tight distribution gets a high on-time probability cheaply; one with a
wide distribution gets a lower one. ``lambda`` is the rule's single knob; sweeping it
traces the rule's trade-off curve (:func:`equal_density_promises`, knob
``-log10(lambda)`` so that a larger knob means a longer promise, as ``q`` does).

A product guard keeps any single promise from being likely broken: ``floor`` is the
least on-time probability any order is promised at (its first day whose CDF reaches
it), whatever the knob; it wins over an upper bound (``upper``, e.g. the retailer's
own estimate).

The per-order distributions (``(n, d_max + 1)`` CDFs over whole days, every one known
at the order's purchase):

* the walk-forward network's CDF itself, or moved by the median of ``days - anchor``
  over recently completed deliveries (:func:`shifted_cdf`);
* :func:`recent_residual_cdf`: the order's anchor plus the distribution of
  ``days - anchor`` over the deliveries completed in the window before purchase (the
  distribution behind ``recent.recent_residual_promises``);
* :func:`estimate_neighbour_cdf`: the delivery days of the ``k`` recently completed
  deliveries whose retailer estimate is nearest the order's (the estimate stands in for
  the distance a copy without places lacks).
"""

from __future__ import annotations

import numpy as np

from ppx.models.delivery import recent as rc

# Knob grid: lambda from 0.3 (promise only the sharpest peaks) down to 1e-6, then 0 -
# the top of the grid, where every order is promised the last allowed day (like q = 1).
LAMBDAS = (*np.geomspace(0.3, 1e-6, 100), 0.0)
TOP_KNOB = 7.0  # the knob of lambda = 0
DAY_NS = np.int64(86_400 * 10**9)


def knob_of(lam: float) -> float:
    """The swept knob of a lambda: ``-log10(lambda)`` (``TOP_KNOB`` for 0)."""
    return TOP_KNOB if lam <= 0 else round(float(-np.log10(lam)), 4)


def lambda_of(knob: float) -> float:
    """The lambda of a knob (inverse of :func:`knob_of`; any knob in between too)."""
    return 0.0 if knob >= TOP_KNOB else float(10.0 ** (-knob))


def first_day_reaching(cdf: np.ndarray, p: float) -> np.ndarray:
    """Per row, the first day whose CDF reaches ``p`` (the last day if none does)."""
    r = np.asarray(cdf) >= p - 1e-12
    r[:, -1] = True
    return r.argmax(axis=1)


def equal_density_promises(
    cdf: np.ndarray,
    lambdas=LAMBDAS,
    floor: float | None = None,
    upper: np.ndarray | None = None,
) -> dict[float, np.ndarray]:
    """{knob: promise days per order}: ``argmax_d F_i(d) - lambda d`` over the allowed
    days of each order, for every lambda (knob :func:`knob_of`).

    The allowed days run from the first day reaching ``floor`` (0 without a floor) to
    ``upper`` (whole days; the last day without one), the floor winning where the two
    cross. Ties go to the shorter promise; lambda = 0 promises the last allowed day.
    """
    f = np.asarray(cdf, float)
    n, width = f.shape
    days = np.arange(width)
    lo = np.zeros(n, int) if floor is None else first_day_reaching(f, floor)
    hi = np.full(n, width - 1) if upper is None else np.clip(np.floor(upper + 1e-9), 0, width - 1)
    hi = np.maximum(hi, lo)
    allowed = (days[None, :] >= lo[:, None]) & (days[None, :] <= hi[:, None])
    out = {}
    for lam in lambdas:
        if lam <= 0:
            out[knob_of(lam)] = hi.astype(float)
            continue
        gain = np.where(allowed, f - lam * days[None, :], -np.inf)
        out[knob_of(lam)] = gain.argmax(axis=1).astype(float)
    return out


def _delivered_days(ordered_at, delivered_at) -> np.ndarray:
    t = np.asarray(ordered_at, dtype="datetime64[ns]").astype(np.int64)
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    days = np.where(np.isnat(dl), np.nan, dl.astype(np.int64) // DAY_NS - t // DAY_NS)
    return np.where(days < 0, np.nan, days).astype(float)  # before purchase: broken record


def _windows(values, delivered_at, at, window_days: int):
    """(completed order indices sorted by delivery time, lo, hi): the deliveries
    completed in ``[at - window_days, at)`` are ``idx[lo[i]:hi[i]]``."""
    dl = np.asarray(delivered_at, dtype="datetime64[ns]")
    ok = np.flatnonzero(~np.isnat(dl) & np.isfinite(values))
    idx = ok[np.argsort(dl[ok].astype(np.int64), kind="stable")]
    times = dl[idx].astype(np.int64)
    a = np.asarray(at, dtype="datetime64[ns]").astype(np.int64)
    lo = np.searchsorted(times, a - np.int64(window_days) * DAY_NS, side="left")
    hi = np.searchsorted(times, a, side="left")  # strictly before the decision moment
    return idx, lo, hi


def _last_day(n: int, d_max: int) -> np.ndarray:
    """CDFs of a promise of ``d_max`` (no distribution known: the rules' fallback)."""
    f = np.zeros((n, d_max + 1))
    f[:, -1] = 1.0
    return f


def recent_residual_cdf(
    anchor: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    window_days: int,
    d_max: int = 60,
    min_completed: int = rc.MIN_COMPLETED,
) -> np.ndarray:
    """CDF of ``anchor_i + R`` per order: ``R`` the values of ``days - anchor`` over the
    orders (the same aligned arrays) delivered in the ``window_days`` before order
    ``i``'s purchase; a step at ``d_max`` where fewer than ``min_completed`` were."""
    a = np.asarray(anchor, float)
    res = _delivered_days(ordered_at, delivered_at) - a
    idx, lo, hi = _windows(res, delivered_at, ordered_at, window_days)
    out = _last_day(len(a), d_max)
    days = np.arange(d_max + 1)
    for i in np.flatnonzero((hi - lo >= min_completed) & np.isfinite(a)):
        r = np.sort(res[idx[lo[i] : hi[i]]])
        out[i] = np.searchsorted(r, days - a[i] + 1e-9, side="right") / len(r)
    out[:, -1] = 1.0  # d_max is every rule's longest promise
    return out


def estimate_neighbour_cdf(
    estimate: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    window_days: int,
    k: int,
    d_max: int = 60,
    min_completed: int = rc.MIN_COMPLETED,
) -> np.ndarray:
    """Empirical CDF of the delivery days of the ``k`` orders delivered in the
    ``window_days`` before each purchase whose retailer ``estimate`` is nearest (in
    log days) to the order's own; a step at ``d_max`` where fewer than
    ``min_completed`` were delivered."""
    e = np.log(np.maximum(np.asarray(estimate, float), 1.0))
    y = _delivered_days(ordered_at, delivered_at)
    idx, lo, hi = _windows(y, delivered_at, ordered_at, window_days)
    out = _last_day(len(e), d_max)
    days = np.arange(d_max + 1)
    for i in np.flatnonzero(hi - lo >= min_completed):
        js = idx[lo[i] : hi[i]]
        if len(js) > k:
            js = js[np.argsort(np.abs(e[js] - e[i]), kind="stable")[:k]]
        out[i] = np.searchsorted(np.sort(y[js]), days, side="right") / len(js)
    out[:, -1] = 1.0
    return out


def shifted_cdf(
    cdf: np.ndarray,
    anchor: np.ndarray,
    ordered_at: np.ndarray,
    delivered_at: np.ndarray,
    window_days: int,
) -> np.ndarray:
    """The network's CDF moved by ``floor`` of the median of ``days - anchor`` over the
    deliveries completed in the ``window_days`` before each purchase (unmoved where the
    window holds too few): the recent-residual correction applied to the whole
    distribution, its shape kept."""
    f = np.asarray(cdf, float)
    res = _delivered_days(ordered_at, delivered_at) - np.asarray(anchor, float)
    med = rc.recent_completed_quantiles(res, delivered_at, ordered_at, [0.5], window_days)[:, 0]
    shift = np.where(np.isfinite(med), np.floor(med + 1e-9), 0).astype(int)
    width = f.shape[1]
    cols = np.clip(np.arange(width)[None, :] - shift[:, None], 0, width - 1)
    out = np.take_along_axis(f, cols, axis=1)
    # Days before the moved start have no mass.
    out = np.where(np.arange(width)[None, :] - shift[:, None] < 0, 0.0, out)
    out[:, -1] = np.maximum(out[:, -1], f[:, -1])
    return out
