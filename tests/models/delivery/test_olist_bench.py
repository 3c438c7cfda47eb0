"""The Olist benchmark's selection pieces: the cap at the retailer's estimate and the
rolling-origin fold score."""

import numpy as np
import pytest

from ppx.models.delivery import olist_bench as ob
from ppx.models.delivery import tradeoff as to

T0 = np.datetime64("2018-01-01T10:00")
DAY = np.timedelta64(1, "D")


def test_cap_never_promises_longer_than_the_retailer_and_none_changes_nothing():
    fam = {0.5: np.array([3, 9, 20]), 0.9: np.array([6, 14, 30])}
    est = np.array([10.0, 10.0, 25.5])
    assert ob.capped(fam, est, None) is fam
    got = ob.capped(fam, est, 1.0)
    assert got[0.5].tolist() == [3, 9, 20]
    assert got[0.9].tolist() == [6, 10, 25]  # floor(25.5): a whole day at most the estimate
    assert ob.capped(fam, est, 1.2)[0.9].tolist() == [6, 12, 30]


def _fold_outcomes(days):
    n = len(days)
    ordered = np.array([T0] * n)
    delivered = np.array([T0 + int(d) * DAY for d in days], dtype="datetime64[ns]")
    return to.Outcomes.at(ordered, delivered, T0 + 60 * DAY)


def test_fold_score_reads_each_fold_at_its_own_rate_and_averages():
    # Fold A: parcels take 1..10 days; fold B: 11..20. A promise of q x 10 days in A
    # and 10 + q x 10 in B keeps a share q of each fold's parcels.
    days = np.r_[np.arange(1, 11), np.arange(11, 21)]
    o = _fold_outcomes(days)
    a, b = np.arange(20) < 10, np.arange(20) >= 10
    fam = {q: np.where(a, q * 10, 10 + q * 10) for q in np.round(np.arange(0.1, 1.01, 0.1), 1)}
    got = ob.fold_score(fam, o, [a, b], [0.5, 0.8])
    assert got["folds"] == pytest.approx([5.0, 18.0])  # 0.5 x 10 in A, 10 + 0.8 x 10 in B
    assert got["mean"] == pytest.approx(11.5)


def test_fold_score_has_no_mean_when_a_fold_never_reaches_its_rate():
    days = np.arange(1, 11)
    o = _fold_outcomes(days)
    fold = np.ones(10, bool)
    fam = {q: np.full(10, q * 10) for q in (0.1, 0.5)}  # never above 0.5 on time
    got = ob.fold_score(fam, o, [fold, fold], [0.3, 0.9])
    assert got["folds"][0] == pytest.approx(3.0)
    assert got["folds"][1] is None and got["mean"] is None


def test_a_drifting_target_picks_each_orders_knob_on_the_curve():
    cv = to.curve(
        {q: np.full(10, q * 10) for q in (0.2, 0.5, 0.8)},
        _fold_outcomes(np.arange(1, 11)),
    )  # knob q keeps a share q
    knobs = to.knobs_for_rates(cv, np.array([0.5, 0.8, 0.6]))
    assert knobs == pytest.approx([0.5, 0.8, 0.6])
    fam = {0.2: np.array([1, 1, 1]), 0.5: np.array([5, 5, 5]), 0.8: np.array([9, 9, 9])}
    assert to.promises_at_knobs(fam, knobs).tolist() == [5, 9, 5]  # 0.6 -> nearest 0.5
