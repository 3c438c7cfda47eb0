"""Shift benchmark bookkeeping: which weeks count after each start and end of a disruption."""

import numpy as np
import pandas as pd

from ppx.models.delivery import shift_bench as sb


def _weeks():
    return pd.DataFrame(
        {"week": [str(d.date()) for d in pd.date_range("2025-10-06", periods=8, freq="7D")]}
    )


def test_the_weeks_right_after_the_start_and_the_end_of_a_disruption_are_left_out():
    # From Wednesday 15 October for three weeks: starts in the week of 13 Oct, ends
    # (5 November, a Wednesday) in the week of 3 Nov.
    dis = {"disruption_start": "2025-10-15", "disruption_days": 21}
    weeks = pd.to_datetime(_weeks()["week"]).dt.strftime("%m-%d").tolist()
    one = np.array(weeks)[sb._after_shifts(_weeks(), dis, 1)].tolist()
    two = np.array(weeks)[sb._after_shifts(_weeks(), dis, 2)].tolist()
    assert one == ["10-06", "10-20", "10-27", "11-10", "11-17", "11-24"]
    assert two == ["10-06", "10-27", "11-17", "11-24"]
    assert sb._after_shifts(_weeks(), {}, 2).all()  # no disruption: every week counts


def test_the_worst_week_is_the_one_farthest_from_the_target():
    assert sb._worst(pd.Series([0.9, 0.87, 0.95, 0.91])) == 0.95
    assert sb._worst(pd.Series([], dtype=float)) is None
