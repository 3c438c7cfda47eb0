"""Promises from recently completed deliveries: the window, no look-ahead, fallbacks."""

import numpy as np
import pytest

from ppx.models.delivery import recent as rc

T0 = np.datetime64("2018-03-01T12:00", "ns")
DAY = np.timedelta64(1, "D")


def _history(n_fast=40, n_slow=40):
    """Fast orders (3 days) delivered 20-30 days before T0, slow ones (12 days)
    delivered 40-50 days before T0, one 30-day parcel delivered after T0."""
    fast_d = T0 - (20 + np.arange(n_fast) % 10) * DAY
    slow_d = T0 - (40 + np.arange(n_slow) % 10) * DAY
    delivered = np.concatenate([fast_d, slow_d, [T0 + DAY]])
    days = np.concatenate([np.full(n_fast, 3), np.full(n_slow, 12), [30]])
    ordered = delivered - days * DAY
    return ordered, delivered


def test_recent_quantile_uses_only_deliveries_of_the_window_before_purchase():
    ordered, delivered = _history()
    p = rc.recent_quantile_promises(ordered, delivered, np.array([T0]), [0.5, 0.99], 28)
    # Window [T0 - 28 d, T0): only the fast orders; the slow ones are older, the 30-day
    # parcel completes after the purchase and must not be seen.
    assert p[0.5][0] == 3 and p[0.99][0] == 3
    wide = rc.recent_quantile_promises(ordered, delivered, np.array([T0]), [0.99], 56)
    assert wide[0.99][0] == 12


def test_recent_quantile_falls_back_to_the_longest_promise_on_thin_windows():
    ordered, delivered = _history(n_fast=5)
    p = rc.recent_quantile_promises(ordered, delivered, np.array([T0]), [0.5], 28, d_max=60)
    assert p[0.5][0] == 60


def test_recent_residuals_shift_the_anchor():
    # Every past order took its anchor + 2 days; a new order is promised anchor + 2.
    n = 50
    delivered = T0 - (1 + np.arange(n) % 20) * DAY
    anchor = np.concatenate([5 + np.arange(n) % 7, [9]]).astype(float)
    ordered = np.concatenate([delivered - (anchor[:n] + 2) * DAY, [T0]])
    delivered = np.concatenate([delivered, [np.datetime64("NaT")]])
    p = rc.recent_residual_promises(anchor, ordered, delivered, [0.5, 0.9], 28)
    assert p[0.5][-1] == 11 and p[0.9][-1] == 11
    # The same orders without a finite anchor get the longest promise.
    anchor[-1] = np.nan
    assert rc.recent_residual_promises(anchor, ordered, delivered, [0.5], 28)[0.5][-1] == 60


@pytest.mark.parametrize("q", [0.2, 0.8])
def test_quantiles_are_order_statistics(q):
    vals = np.array([1.0, 2.0, 3.0, 4.0, 5.0] * 10)
    delivered = np.full(len(vals), T0 - DAY)
    got = rc.recent_completed_quantiles(vals, delivered, np.array([T0]), [q], 28)
    assert got[0, 0] in set(vals)


def test_rolling_recalibration_recovers_the_target_after_a_slow_down():
    # 40 orders a day for 200 days; from day 100 every parcel takes 5 days longer than
    # the model's anchor says. Promises recalibrated on completed deliveries get back
    # to about the target rate; a quantile frozen on the first 100 days does not.
    rng = np.random.default_rng(0)
    n_days, per_day = 200, 40
    day = np.repeat(np.arange(n_days), per_day)
    ordered = T0 + day * DAY + rng.integers(0, 8 * 3600, len(day)) * np.timedelta64(1, "s")
    anchor = rng.integers(3, 10, len(day)).astype(float)
    took = anchor + rng.integers(0, 4, len(day)) + np.where(day >= 100, 5, 0)
    delivered = ordered + took.astype(int) * DAY
    p = rc.recent_residual_promises(anchor, ordered, delivered, [0.9], 28)[0.9]
    after = day >= 130
    assert abs(np.mean(took[after] <= p[after]) - 0.9) < 0.11
    frozen = anchor + np.quantile((took - anchor)[day < 100], 0.9, method="inverted_cdf")
    assert np.mean(took[after] <= frozen[after]) < 0.3


def test_blend_is_the_rounded_up_mean_at_the_same_knob():
    from ppx.models.delivery.olist_bench import blend

    got = blend({0.9: np.array([10, 11, 12])}, {0.9: np.array([12, 12, 12])})
    assert got[0.9].tolist() == [11, 12, 12]


def test_recent_on_time_rate_counts_outcomes_when_they_become_known():
    # Four orders promised 5 days: two delivered on day 3 (kept), one on day 8 (missed),
    # one never delivered (missed once its promised day ends).
    ordered = np.array([T0 - 20 * DAY] * 4)
    delivered = np.array(
        [T0 - 17 * DAY, T0 - 17 * DAY, T0 - 12 * DAY, np.datetime64("NaT")], dtype="datetime64[ns]"
    )
    promised = np.full(4, 5.0)
    got = rc.recent_on_time_rate(ordered, delivered, promised, np.array([T0]), 28, min_known=1)
    assert got[0] == pytest.approx(0.5)
    # Just after the two kept deliveries, nothing late is known yet.
    early = np.array([T0 - 16 * DAY])
    assert rc.recent_on_time_rate(ordered, delivered, promised, early, 28, min_known=1)[0] == 1.0
    # Outcomes older than the window do not count; too few known -> NaN.
    assert np.isnan(rc.recent_on_time_rate(ordered, delivered, promised, np.array([T0]), 5, 1)[0])
    # An order without an outcome (flagged) is never counted.
    flagged = np.array([False, False, True, True])
    got = rc.recent_on_time_rate(ordered, delivered, promised, np.array([T0]), 28, 1, flagged)
    assert got[0] == 1.0
