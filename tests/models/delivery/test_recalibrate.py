"""Online recalibration: follows a slow-down from completed deliveries, no look-ahead."""

import numpy as np
import pytest

from ppx.models.delivery.recalibrate import (
    OnlineRecalibration,
    fit_scale,
    parcel_loglik,
    time_scaled,
    track_scale,
)

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


def _replay(
    slow_from_day: int,
    n_days: int = 70,
    per_day: int = 80,
    window: int = 14,
    slow_until_day: int | None = None,
    mode: str = "track",
    regions: tuple | None = None,
    slow_region: str | None = None,
):
    """Day-by-day promises on a stream of parcels that take 3 days more (x1.6 in
    time) from ``slow_from_day`` until ``slow_until_day``; with ``regions``, parcels
    are spread over them and only ``slow_region``'s slow down.

    Returns (day, online kept, frozen kept, online promise days) per parcel."""
    rng = np.random.default_rng(0)
    by_region = regions is not None
    rec = OnlineRecalibration(window_days=window, min_completed=100, mode=mode, by_region=by_region)
    out = {k: [] for k in ("day", "online", "frozen", "promise", "region")}
    for d in range(n_days):
        now = T0 + d * DAY
        rec.refit(now)
        cdf = _cdf(per_day)
        ids = np.arange(per_day) + d * per_day
        reg = None if regions is None else np.array(regions, dtype=object)[ids % len(regions)]
        base = 2 + rng.geometric(0.4, per_day) - 1 + rng.random(per_day)
        slow = slow_from_day <= d < (slow_until_day or n_days)
        hit = np.full(per_day, slow) & (True if slow_region is None else reg == slow_region)
        took = np.floor(np.where(hit, 1.6 * base, base)).astype(int)
        frozen = (cdf >= 0.9 - 1e-12).argmax(axis=1)
        carriers = np.full(per_day, "a", dtype=object)
        promise = rec.promise(cdf, 0.9, carriers, frozen, regions=reg)
        rec.observe(ids, np.full(per_day, now), carriers, cdf, promise, 0.9, regions=reg)
        rec.deliver(ids, now + took * DAY)  # known only from that day on
        out["day"].append(np.full(per_day, d))
        out["online"].append(took <= promise)
        out["frozen"].append(took <= frozen)
        out["promise"].append(promise)
        out["region"].append(reg if reg is not None else np.full(per_day, None))
    return {k: np.concatenate(v) for k, v in out.items()}


def test_recalibration_recovers_within_two_weeks_of_a_slow_down():
    r = _replay(slow_from_day=16, n_days=44)
    day, online, frozen = r["day"], r["online"], r["frozen"]
    # Promises made from two weeks after the slow-down are kept at about the target
    # again. Every parcel has the same CDF, so a promise is one whole day for all of
    # them: the rate can only sit on a step of the delivery-time distribution.
    before = (day >= 11) & (day < 16)
    after = day >= 30
    assert 0.85 <= online[before].mean() <= 0.97
    assert 0.85 <= online[after].mean() <= 0.97
    assert frozen[after].mean() < 0.8  # the validation rule alone keeps far fewer
    # The slow-down is read from overdue parcels within days, not weeks.
    first = (day >= 20) & (day < 23)
    assert online[first].mean() > frozen[first].mean() + 0.15


def test_a_return_to_normal_speed_lowers_the_promise_again():
    r = _replay(slow_from_day=16, slow_until_day=30, n_days=44)
    day, online, promise = r["day"], r["online"], r["promise"]
    during = (day >= 24) & (day < 30)
    after = day >= 37  # a week after the end
    assert promise[after].mean() < promise[during].mean() - 1.5
    assert 0.85 <= online[after].mean() <= 0.97  # not still promising the slow days


def test_the_change_point_filter_drops_an_ended_slow_down_faster_than_the_window():
    """The window-wide fit keeps part of the slow-down until the slow parcels leave
    its window; the filter lets go once the first fast parcels arrive."""
    track = _replay(slow_from_day=16, slow_until_day=30, n_days=37)
    scale = _replay(slow_from_day=16, slow_until_day=30, n_days=37, mode="scale")
    week = (track["day"] >= 32) & (track["day"] < 37)
    assert track["promise"][week].mean() < scale["promise"][week].mean()


def test_a_slow_down_of_one_region_lengthens_only_its_promises():
    r = _replay(slow_from_day=16, n_days=34, regions=("north", "south"), slow_region="south")
    late = r["day"] >= 26
    south, north = late & (r["region"] == "south"), late & (r["region"] == "north")
    assert r["promise"][south].mean() > r["promise"][north].mean() + 1.5
    assert 0.85 <= r["online"][south].mean() <= 0.97
    assert 0.85 <= r["online"][north].mean() <= 0.97


def test_parcels_that_never_arrive_do_not_read_as_a_slow_down():
    rng = np.random.default_rng(2)
    n = 1400
    took = 2 + rng.geometric(0.4, n) - 1
    age = rng.integers(1, 15, n)  # purchase days ago
    done = took < age
    lost = rng.random(n) < 0.02  # never delivered: in flight ever after
    lik = parcel_loglik(_cdf(n), np.where(done & ~lost, took, age), done & ~lost)
    by_day = np.zeros((14, lik.shape[1]))
    np.add.at(by_day, 14 - age, lik)
    s, a = track_scale(by_day)
    assert s == pytest.approx(1.0, abs=0.06) and abs(a) <= 0.3


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
