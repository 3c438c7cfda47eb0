"""The equal-density promise rule: shorter promises than equal quantiles at the same
expected on-time rate when distributions differ in width, a floor that always holds,
and the per-order distributions built only from deliveries completed before purchase."""

import numpy as np
import pytest

from ppx.models.delivery import equal_density as ed

D_MAX = 60
T0 = np.datetime64("2018-03-01T10:00", "ns")
DAY = np.timedelta64(1, "D")


def _discretised_normal(mu, sd, n):
    days = np.arange(D_MAX + 1)
    z = (days[None, :] + 0.5 - np.asarray(mu, float)[:, None]) / np.asarray(sd, float)[:, None]
    from math import erf

    cdf = 0.5 * (1 + np.vectorize(erf)(z / np.sqrt(2)))
    cdf[:, -1] = 1.0
    return np.broadcast_to(cdf, (n, D_MAX + 1)).copy()


def _mixture():
    """Half the orders tight (sd 1 day around day 5), half wide (sd 6 days around 15)."""
    mu = np.r_[np.full(50, 5.0), np.full(50, 15.0)]
    sd = np.r_[np.full(50, 1.0), np.full(50, 6.0)]
    return _discretised_normal(mu, sd, 100)


def _expected(cdf, promise):
    """(expected on-time rate, mean promise) under the orders' own distributions."""
    p = np.asarray(promise, int)
    return float(cdf[np.arange(len(p)), p].mean()), float(p.mean())


def _equal_quantile_days_at(cdf, rate):
    """Mean promise of equal quantile levels at an expected on-time rate (interpolated
    over a fine grid of levels)."""
    pts = [_expected(cdf, ed.first_day_reaching(cdf, q)) for q in np.linspace(0.5, 0.999, 400)]
    x, y = np.array(pts).T
    order = np.argsort(x)
    return float(np.interp(rate, x[order], y[order]))


def test_equal_density_is_shorter_than_equal_quantiles_at_the_same_expected_rate():
    cdf = _mixture()
    fam = ed.equal_density_promises(cdf)
    for target in (0.85, 0.9, 0.95):
        pts = np.array([_expected(cdf, v) for v in fam.values()])
        order = np.argsort(pts[:, 0])
        density_days = float(np.interp(target, pts[order, 0], pts[order, 1]))
        quantile_days = _equal_quantile_days_at(cdf, target)
        assert density_days < quantile_days - 0.2, (target, density_days, quantile_days)


def test_equal_density_gives_tight_orders_the_higher_on_time_probability():
    cdf = _mixture()
    lam = 0.02
    promise = ed.equal_density_promises(cdf, [lam])[ed.knob_of(lam)].astype(int)
    p_on_time = cdf[np.arange(100), promise]
    assert p_on_time[:50].min() > p_on_time[50:].max()
    # Each promise is where one more day buys less than lambda of on-time probability.
    for i in (0, 99):
        d = promise[i]
        assert cdf[i, d] - cdf[i, d - 1] >= lam > cdf[i, d + 1] - cdf[i, d]


def test_the_floor_holds_for_every_order_at_every_knob_and_wins_over_the_upper_bound():
    cdf = _mixture()
    upper = np.full(100, 8.0)  # below the wide orders' 0.8 day
    fam = ed.equal_density_promises(cdf, floor=0.8, upper=upper)
    floor_day = ed.first_day_reaching(cdf, 0.8)
    for promise in fam.values():
        p = promise.astype(int)
        assert (cdf[np.arange(100), p] >= 0.8 - 1e-12).all()
        assert (p <= np.maximum(upper, floor_day)).all()
    # The top of the grid (lambda 0) promises the last allowed day.
    assert fam[ed.TOP_KNOB].tolist() == np.maximum(upper, floor_day).tolist()


def test_knob_and_lambda_are_inverse_and_longer_with_the_knob():
    for lam in (0.3, 0.01, 1e-5, 0.0):
        assert ed.lambda_of(ed.knob_of(lam)) == pytest.approx(lam, rel=1e-3)
    fam = ed.equal_density_promises(_mixture())
    means = [fam[k].mean() for k in sorted(fam)]
    assert all(b >= a for a, b in zip(means, means[1:], strict=False))


def _orders(days_taken, start_offsets_days):
    ordered = np.array([T0 + int(s) * DAY for s in start_offsets_days], dtype="datetime64[ns]")
    delivered = ordered + np.array([int(d) for d in days_taken]) * DAY
    return ordered, delivered


def test_recent_residual_cdf_uses_only_deliveries_completed_before_purchase():
    # 40 early orders, each 3 days late against an anchor of 5; then one order at day 60.
    starts = np.r_[np.arange(40) * 0.5, 60]
    taken = np.r_[np.full(40, 8), 2]
    ordered, delivered = _orders(taken, starts)
    anchor = np.r_[np.full(40, 5.0), 10.0]
    cdf = ed.recent_residual_cdf(anchor, ordered, delivered, window_days=60, d_max=D_MAX)
    last = cdf[-1]
    assert last[12] == 0.0 and last[13] == 1.0  # anchor 10 + residual 3
    # Early orders had fewer than 30 completions before them: a step at d_max.
    assert cdf[0, D_MAX - 1] == 0.0 and cdf[0, D_MAX] == 1.0


def test_estimate_neighbour_cdf_takes_the_nearest_estimates():
    starts = np.r_[np.arange(60) * 0.2, 40]
    taken = np.r_[np.full(30, 4), np.full(30, 20), 0]
    ordered, delivered = _orders(taken, starts)
    estimate = np.r_[np.full(30, 5.0), np.full(30, 25.0), 24.0]
    cdf = ed.estimate_neighbour_cdf(estimate, ordered, delivered, 60, k=30, d_max=D_MAX)
    assert cdf[-1, 19] == 0.0 and cdf[-1, 20] == 1.0  # its neighbours took 20 days


def test_shifted_cdf_moves_the_network_distribution_by_the_recent_median_residual():
    starts = np.r_[np.arange(40) * 0.5, 60]
    taken = np.r_[np.full(40, 7), 0]
    ordered, delivered = _orders(taken, starts)
    anchor = np.full(41, 5.0)
    base = np.zeros((41, D_MAX + 1))
    base[:, 5:] = 1.0  # a step at day 5
    moved = ed.shifted_cdf(base, anchor, ordered, delivered, window_days=60)
    assert moved[-1, 6] == 0.0 and moved[-1, 7] == 1.0  # median residual +2 days
    assert (moved[0] == base[0]).all()  # too few completions: unmoved
