"""Olist live-system promise rule: Kaplan-Meier with censoring, no look-ahead, calibration."""

import numpy as np
import pytest

from ppx.models.delivery.online import km_quantile, scaled_km_promises

DAY = np.timedelta64(1, "D")


def test_km_quantile_matches_hand_computation():
    # values 1..5, the 2 censored (only "> 2" known). KM survival: after 1: 4/5 = 0.8;
    # 2 censored leaves 3 at risk; after 3: 0.8 * 2/3 = 0.533; after 4: 0.267; after 5: 0.
    v = np.array([3.0, 1.0, 5.0, 2.0, 4.0])
    e = np.array([1.0, 1.0, 1.0, 0.0, 1.0])
    assert km_quantile(v, e, 0.2) == 1.0
    assert km_quantile(v, e, 0.4) == 3.0  # F(3) = 0.467
    assert km_quantile(v, e, 0.5) == 4.0  # F(3) < 0.5 <= F(4) = 0.733
    # Dropping the censored value instead would give F(3) = 0.5, i.e. 3.
    assert km_quantile(v[e > 0], e[e > 0], 0.5) == 3.0


def test_km_quantile_ties_and_unobserved_tail():
    # At a tie the event comes first: the censored 2 is known to lie above it.
    assert km_quantile(np.array([2.0, 2.0]), np.array([0.0, 1.0]), 0.5) == 2.0
    # Half the mass is censored at 2 with nothing beyond: the 0.9-quantile is unknown.
    assert km_quantile(np.array([1.0, 2.0]), np.array([1.0, 0.0]), 0.9) is None
    assert km_quantile(np.array([]), np.array([]), 0.5) is None


def _orders(n_days=200, per_day=20, seed=0, slow_after=None):
    rng = np.random.default_rng(seed)
    day = np.repeat(np.arange(n_days), per_day)
    t0 = np.datetime64("2018-01-01T00:00", "ns")
    ordered = t0 + day * DAY + (rng.uniform(0, 0.9, len(day)) * 86_400e9).astype("timedelta64[ns]")
    base = rng.choice([10.0, 20.0, 30.0], len(day))
    speed = np.ones(len(day)) if slow_after is None else np.where(day >= slow_after, 2.0, 1.0)
    days = np.floor(0.4 * base * speed * rng.lognormal(0.0, 0.4, len(day)))
    delivered = ordered + (days * 86_400e9 + 3_600e9).astype("timedelta64[ns]")
    return base, ordered, delivered


def test_future_deliveries_change_nothing():
    base, ordered, delivered = _orders(n_days=120)
    p = scaled_km_promises(base, ordered, delivered, (0.9,))[0][0.9]
    cut = np.datetime64("2018-03-01T00:00", "ns")
    planted = delivered.copy()
    later = planted >= cut
    planted[later] = planted[later] + 25 * DAY  # deliveries after the cut: much slower
    planted[np.flatnonzero(later)[::7]] = np.datetime64("NaT")  # some never arrive
    q = scaled_km_promises(base, ordered, planted, (0.9,))[0][0.9]
    decided = ordered < cut  # purchased before the cut: decided before any change
    np.testing.assert_array_equal(p[decided], q[decided])
    assert (q[~decided] > p[~decided]).mean() > 0.5  # later orders do see the slowdown


def test_on_time_rate_tracks_target_and_follows_a_slowdown():
    base, ordered, delivered = _orders(n_days=240, slow_after=150, seed=1)
    p = scaled_km_promises(base, ordered, delivered, (0.9,))[0][0.9]
    y = (delivered.astype("datetime64[D]") - ordered.astype("datetime64[D]")).astype(int)
    day = (ordered - ordered.min()).astype("timedelta64[D]").astype(int)
    steady = (day >= 60) & (day < 150)
    assert abs(np.mean(y[steady] <= p[steady]) - 0.9) < 0.03
    after = day >= 190  # 40 days after speed halved: promises have about doubled
    assert np.mean(p[after]) > 1.6 * np.mean(p[steady])
    assert np.mean(y[after] <= p[after]) > 0.85


@pytest.mark.parametrize("target", [0.5, 0.95])
def test_promise_is_monotone_in_target(target):
    base, ordered, delivered = _orders(n_days=80, seed=2)
    out = scaled_km_promises(base, ordered, delivered, (0.9, target))[0]
    lo, hi = sorted([0.9, target])
    assert np.all(out[lo] <= out[hi])


def test_orders_without_a_base_estimate_get_the_longest_promise_and_spoil_nothing():
    base, ordered, delivered = _orders(n_days=120)
    p = scaled_km_promises(base, ordered, delivered, (0.9,))[0][0.9]
    holes = base.copy()
    holes[::11] = np.nan  # Olist's estimate missing for some orders
    q = scaled_km_promises(holes, ordered, delivered, (0.9,))[0][0.9]
    assert (q[::11] == 60).all()  # d_max, never a garbage integer
    keep = np.ones(len(base), dtype=bool)
    keep[::11] = False
    # the others' promises are still calibrated from their own estimates (less data)
    took = (delivered - ordered).astype("timedelta64[D]").astype(int)
    assert abs(np.mean(took[keep] <= q[keep]) - np.mean(took[keep] <= p[keep])) < 0.02
