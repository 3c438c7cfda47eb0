"""Trade-off curves: outcome scoring at a cutoff, interpolation, in-advance knob."""

import numpy as np
import pandas as pd
import pytest

from ppx.models.delivery import tradeoff as to

T0 = np.datetime64("2018-01-01T10:00")
DAY = np.timedelta64(1, "D")


def _outcomes(strict=False):
    ordered = np.array([T0] * 5)
    delivered = np.array(
        [T0 + 2 * DAY, T0 + 5 * DAY, np.datetime64("NaT"), np.datetime64("NaT"), "NaT"],
        dtype="datetime64[ns]",
    )
    flag = np.array([True, True, False, False, True])  # the last: delivered, no date
    # Cutoff 8 days after the purchase day: promises of 0..7 days have ended.
    return to.Outcomes.at(ordered, delivered, T0 + 8 * DAY, flag, strict=strict)


def test_open_orders_are_late_once_their_promise_ended_and_undated_ones_left_out():
    o = _outcomes()
    kept, scored = o.score(np.array([3, 3, 7, 8, 3]))
    # kept (2 <= 3), late (5 > 3), open past its 7-day promise: late, open within its
    # 8-day promise: left out, delivered without a date: left out.
    assert kept.tolist() == [True, False, False, False, False]
    assert scored.tolist() == [True, True, True, False, False]
    r = o.on_time(np.array([3, 3, 7, 8, 3]))
    assert r["on_time_rate"] == pytest.approx(1 / 3)
    assert (r["late_undelivered"], r["excluded_open"], r["excluded_no_date"]) == (1, 1, 1)


def test_strict_scoring_waits_for_the_promise_day_to_end():
    # Delivered on day 2 with a 10-day promise: kept, but with a cutoff on day 8 a
    # miss of the same promise could not be seen yet, so strict scoring leaves it out.
    promise = np.array([10, 3, 7, 8, 3])
    assert _outcomes().score(promise)[1][0]
    assert not _outcomes(strict=True).score(promise)[1][0]
    assert _outcomes(strict=True).score(promise)[1][1]  # 3-day promise ended: scored


def test_delivery_after_the_cutoff_is_not_known_at_it():
    ordered = np.array([T0])
    delivered = np.array([T0 + 9 * DAY])
    o = to.Outcomes.at(ordered, delivered, T0 + 4 * DAY)
    assert np.isnan(o.days[0])
    kept, scored = o.score(np.array([2]))  # 2-day promise ended before the cutoff: late
    assert scored[0] and not kept[0]


def _constant_family(days):
    n = len(days)
    o = to.Outcomes(np.asarray(days, float), np.full(n, 99.0), np.zeros(n, bool))
    fam = {float(k): np.full(n, k) for k in range(0, 11)}
    return to.curve(fam, o)


def test_curve_and_interpolation_at_a_rate():
    days = np.repeat(np.arange(10), 10)  # 0..9, ten each: P(days <= k) = (k + 1) / 10
    cv = _constant_family(days)
    assert cv.set_index("knob").loc[4.0, "on_time_rate"] == pytest.approx(0.5)
    # Between k = 4 (0.5) and k = 5 (0.6): halfway is 4.5 days.
    assert to.days_at_rate(cv, 0.55) == pytest.approx(4.5)
    assert to.days_at_rate(cv, 0.5) == pytest.approx(4.0)
    assert to.knob_for_rate(cv, 0.55) == pytest.approx(4.5)
    assert to.days_at_rate(cv, 0.05) is None  # below the shortest promise's rate


def test_dominated_points_do_not_bend_the_curve():
    cv = pd.DataFrame(
        {
            "knob": [1.0, 2.0, 3.0],
            "on_time_rate": [0.80, 0.85, 0.90],
            "promise_days": [10.0, 14.0, 12.0],  # 0.85 at 14 days is beaten by 0.90 at 12
        }
    )
    assert to.days_at_rate(cv, 0.85) == pytest.approx(11.0)


def test_plot_writes_a_png(tmp_path):
    cv = _constant_family(np.repeat(np.arange(10), 10))
    path = tmp_path / "curves.png"
    panel = {"title": "t", "curves": {"a": cv}, "points": {"a": (0.5, 4.0)}, "rate": 0.55}
    to.plot_curves([panel, panel], path, "title")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_delivery_dated_before_its_purchase_is_left_out():
    o = to.Outcomes.at(np.array([T0]), np.array([T0 - 3 * DAY]), T0 + 9 * DAY)
    assert o.no_date[0]
    assert not o.score(np.array([5]))[1][0]
