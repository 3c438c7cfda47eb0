"""The week-blind oracle bound: the oracle when not blind, a proper and weaker CDF when blind."""

from __future__ import annotations

import numpy as np
import pytest

from ppx.data import columns as C
from ppx.models.delivery import evaluate as ev
from ppx.models.delivery import train as tr
from ppx.models.delivery.dataset import make_data
from ppx.models.delivery.oracle_bound import week_blind_cdf


@pytest.fixture(scope="module")
def parts(tiny_world):
    world, _ = tiny_world
    data = make_data(world.tables, val_months=2, test_months=2, seed=0)
    orders = world.tables[C.ORDERS].merge(
        world.tables[C.SHIPMENTS][[C.ORDER_ID, C.SHIPMENT_ID, C.WEIGHT_KG]], on=C.ORDER_ID
    )
    rows = tr.checkout_rows(data.test)
    return orders, world.truth[C.TRUTH_SHIPMENTS], rows, data.val[C.ORDERED_AT].min()


def test_not_blind_is_the_oracle(parts):
    orders, truth, rows, train_end = parts
    cdf = week_blind_cdf(orders, truth, rows, train_end, blind_days=0, d_max=30)
    np.testing.assert_allclose(cdf, ev.oracle_cdf(rows, truth, 30))


def test_blind_all_week_is_a_cdf_and_no_better_than_the_oracle(parts):
    orders, truth, rows, train_end = parts
    cdf = week_blind_cdf(orders, truth, rows, train_end, blind_days=7, d_max=30)
    assert np.all(np.diff(cdf, axis=1) >= -1e-12) and np.all(cdf[:, -1] == 1.0)
    y = rows["y_day"].to_numpy()
    oracle = ev.oracle_cdf(rows, truth, 30)
    blind = ev.pinball(y, ev.first_reach(cdf, 0.9), 0.9)
    assert blind >= ev.pinball(y, ev.first_reach(oracle, 0.9), 0.9)
