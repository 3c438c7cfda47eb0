"""Online recalibration: follows a slow-down from completed deliveries, no look-ahead."""

import numpy as np
import pytest

from ppx.models.delivery.recalibrate import OnlineRecalibration, fit_scale, time_scaled

T0 = np.datetime64("2025-01-06T00:00", "s")
DAY = np.timedelta64(1, "D")
D_MAX = 30


def _cdf(n):
    """Every parcel is predicted to arrive from day 2 on with a daily hazard of 0.4 (a
    geometric tail: P(by day 6) = 0.92, by day 12 = 0.996), CDF 1 on the last day."""
    d = np.arange(D_MAX + 1)
    row = np.where(d >= 2, 1.0 - 0.6 ** (d - 1), 0.0)
    row[-1] = 1.0
    return np.tile(row, (n, 1))


def _replay(slow_from_day: int, n_days: int = 70, per_day: int = 80, window: int = 14):
    rng = np.random.default_rng(0)
    rec = OnlineRecalibration(window_days=window, min_completed=100)
    kept_online, kept_frozen, days = [], [], []
    for d in range(n_days):
        now = T0 + d * DAY
        rec.refit(now)
        cdf = _cdf(per_day)
        ids = np.arange(per_day) + d * per_day
        took = 2 + rng.geometric(0.4, per_day) - 1 + (3 if d >= slow_from_day else 0)
        frozen = (cdf >= 0.9 - 1e-12).argmax(axis=1)
        promise = rec.promise(cdf, 0.9, np.full(per_day, "a", dtype=object), frozen)
        rec.observe(ids, np.full(per_day, now), np.full(per_day, "a", dtype=object), cdf)
        rec.deliver(ids, now + took * DAY)  # known only from that day on
        kept_online.append(np.mean(took <= promise))
        kept_frozen.append(np.mean(took <= frozen))
        days.append(d)
    return np.array(days), np.array(kept_online), np.array(kept_frozen)


def test_recalibration_recovers_within_two_weeks_of_a_slow_down():
    days, online, frozen = _replay(slow_from_day=20)
    # Promises made 14 days after the slow-down are kept at about the target again.
    before = (days >= 15) & (days < 20)
    after = days >= 34  # two weeks after the slow-down
    # Every parcel has the same CDF, so a promise is one whole day for all of them: the
    # rate can only sit on a step of the delivery-time distribution (0.87, 0.92, 0.95
    # here), the first one at or above the target.
    assert 0.88 <= online[before].mean() <= 0.97
    assert 0.88 <= online[after].mean() <= 0.97
    assert frozen[after].mean() < 0.7  # the validation rule alone keeps far fewer


def test_speed_factor_and_delay_are_read_from_censored_outcomes():
    """Parcels that take 1.6 times as long, or 3 days more, than the model says are
    told apart; parcels still in flight count as 'at least this long'."""
    rng = np.random.default_rng(1)
    took = 2 + rng.geometric(0.4, 1500) - 1
    cdf, done = _cdf(1500), np.ones(1500, dtype=bool)
    # A parcel of day d is taken to arrive uniformly within that day: day d + u, u < 1.
    s, a = fit_scale(cdf, np.floor(1.6 * (took + rng.random(1500))), done)
    assert s == pytest.approx(1.6, rel=0.06) and abs(a) <= 0.5
    s, a = fit_scale(cdf, took + 3, done)
    assert s == pytest.approx(1.0, rel=0.06) and a == pytest.approx(3.0, abs=0.5)
    # The same slow-down seen after four days: whoever has not arrived yet is censored.
    seen = np.minimum(took + 3, 4)
    s_c, a_c = fit_scale(cdf, seen, took + 3 < 4)
    assert time_scaled(cdf[:1], s_c, a_c)[0, 3] < 0.5 < cdf[0, 3]  # slower than the model
    # As the model says: no change.
    assert fit_scale(cdf, took, done) == pytest.approx((1.0, 0.0), abs=0.05)


def test_promise_on_the_time_scaled_distribution_uses_the_validation_rule():
    rec = OnlineRecalibration(window_days=7, min_completed=1)
    rec.scales = {"a": (1.0, 2.0)}
    got = rec.promise(_cdf(2), 0.9, np.array(["a", "b"], dtype=object), np.full(2, 6), _first_day)
    assert got.tolist() == [8, 6]  # two days later for "a"; "b" keeps its fallback


def _first_day(cdf, target):
    return (cdf >= np.asarray(target)[:, None] - 1e-12).argmax(axis=1)


def test_refit_uses_only_deliveries_before_the_day():
    rec = OnlineRecalibration(window_days=7, min_completed=1)
    ids = np.arange(200)
    rec.observe(ids, np.full(200, T0), np.full(200, "a", dtype=object), _cdf(200))
    rec.deliver(ids, np.full(200, T0 + 3 * DAY))
    assert rec.refit(T0 + 3 * DAY) == {}  # all still in flight at the start of day 3
    assert "a" in rec.refit(T0 + 4 * DAY)


def test_groups_without_enough_outcomes_keep_the_fallback():
    rec = OnlineRecalibration(window_days=7, min_completed=50)
    ids = np.arange(10)
    rec.observe(ids, np.full(10, T0), np.full(10, "a", dtype=object), _cdf(10))
    rec.deliver(ids, np.full(10, T0 + DAY))
    rec.refit(T0 + 5 * DAY)
    fallback = np.full(3, 17)
    got = rec.promise(_cdf(3), 0.9, np.array(["a", "a", "b"], dtype=object), fallback)
    assert got.tolist() == [17, 17, 17]


def test_deliveries_reported_before_their_order_is_observed_are_kept():
    rec = OnlineRecalibration(window_days=7, min_completed=1)
    rec.deliver(np.arange(100), np.full(100, T0 + 2 * DAY))  # e.g. a batch backfill
    rec.refit(T0)  # nothing observed yet: must not forget the deliveries
    rec.observe(np.arange(100), np.full(100, T0), np.full(100, "a", dtype=object), _cdf(100))
    assert "a" in rec.refit(T0 + 3 * DAY)


@pytest.mark.parametrize("mode", ["scale", "conformal"])
def test_adaptive_offset_moves_each_group_toward_its_stated_rate(mode):
    """Promises kept every time lower the group's level; promises missed raise it; an
    outcome counts once, when it becomes known (delivered, or the promised day over)."""
    rec = OnlineRecalibration(window_days=7, min_completed=1, gamma=0.1, mode=mode)
    n = 100
    groups = np.array(["early"] * n + ["late"] * n, dtype=object)
    ids = np.arange(2 * n)
    rec.observe(ids, np.full(2 * n, T0), groups, _cdf(2 * n), np.full(2 * n, 4), 0.9)
    rec.deliver(ids[:n], np.full(n, T0 + 2 * DAY))  # "early": all within the 4 days
    rec.refit(T0 + 3 * DAY)  # "late" parcels still in flight, their promise still open
    assert rec.offset["early"] == pytest.approx(-0.01)  # 0.1 x (0.9 - 1.0)
    assert "late" not in rec.offset
    rec.refit(T0 + 6 * DAY)  # day 4 is over for "late": a miss each, known now
    assert rec.offset["late"] == pytest.approx(0.09)  # 0.1 x (0.9 - 0.0)
    assert rec.offset["early"] == pytest.approx(-0.01)  # not counted twice
    # The offset moves the promise: a lower level never promises later, a higher one
    # never earlier, than the same rule at the stated level.
    rec.deliver(ids[n:], np.full(n, T0 + 5 * DAY))
    rec.refit(T0 + 6 * DAY)
    plain = OnlineRecalibration(window_days=7, min_completed=1, mode=mode)
    plain.rules, plain.scales = rec.rules, rec.scales
    cdf, fb = _cdf(2), np.full(2, 30)
    g = np.array(["early", "late"], dtype=object)
    assert rec.promise(cdf, 0.9, g, fb)[0] <= plain.promise(cdf, 0.9, g, fb)[0]
    assert rec.promise(cdf, 0.9, g, fb)[1] >= plain.promise(cdf, 0.9, g, fb)[1]
