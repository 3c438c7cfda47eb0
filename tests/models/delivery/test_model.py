"""Delivery model behaviour: beats the lane quantile, calibrated, clear errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features.delivery import DeliveryInputError
from ppx.models.delivery import evaluate as ev
from ppx.models.delivery import train as tr
from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.dataset import make_data
from ppx.models.delivery.model import DeliveryModel, Recalibrator, fit
from ppx.models.delivery.pyfunc import REQUEST_EXAMPLE, TRANSIT_EXAMPLE

FAST = DeliveryConfig(epochs=8, patience=3, hidden=(64, 32), batch_size=512, threads=1)


@pytest.fixture(scope="module")
def tiny(tiny_world):
    world, _ = tiny_world
    data = make_data(world.tables, val_months=2, test_months=2, seed=0)
    model = fit(data.train, data.val, data.history, replace(FAST), progress=False)
    return world, data, model


def test_beats_lane_quantile_on_tiny_world(tiny):
    _world, data, model = tiny
    ours = tr.evaluate_model(model, data)
    rows = tr.checkout_rows(data.test)
    y = rows["y_day"].to_numpy()
    hist = pd.concat([tr.checkout_rows(data.train), tr.checkout_rows(data.val)])
    lq = ev.lane_quantile(hist, rows)
    assert ours["pinball_0_5"] < ev.pinball(y, lq[0.5], 0.5)
    assert ours["pinball_0_9"] < ev.pinball(y, lq[0.9], 0.9)


def test_in_transit_late_probability_is_informative(tiny):
    _world, data, model = tiny
    m = tr.evaluate_model(model, data)
    assert m["late_auc_in_transit"] > 0.75


def test_promise_grows_with_target_and_p_on_time_with_date(tiny):
    _world, _data, model = tiny
    req = pd.DataFrame([REQUEST_EXAMPLE] * 3).assign(promise_target=[0.5, 0.9, 0.99])
    out = model.predict(req)
    assert np.all(np.diff(out["promise_days"].to_numpy()) >= 0)
    assert out["promise_days"].iloc[2] > out["promise_days"].iloc[0]
    dates = pd.DataFrame([REQUEST_EXAMPLE] * 3).assign(
        promise_date=["2025-12-02", "2025-12-04", "2025-12-08"]
    )
    p = model.predict(dates)["p_on_time"].to_numpy()
    assert np.all(np.diff(p) >= 0) and 0 <= p[0] < p[-1] <= 1


def test_in_transit_request(tiny):
    _world, _data, model = tiny
    req = {**TRANSIT_EXAMPLE, "ordered_at": "2024-10-01T10:00", "as_of": "2024-10-03T09:00"}
    req.update(picked_up_at="2024-10-01T18:00", last_scan_at="2024-10-02T22:00")
    out = model.predict(pd.DataFrame([req]))
    assert out["stage"].iloc[0] == "transit"
    assert out["p50_days"].iloc[0] >= 2  # cannot arrive before the current day
    assert 0.0 <= out["p_late"].iloc[0] <= 1.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"carrier": "pigeon"}, "carrier"),
        ({"weight_kg": -2.0}, "weight_kg"),
        ({"dest_region": None}, "dest_region"),
        ({"service_level": "teleport"}, "service_level"),
    ],
)
def test_bad_requests_name_the_field(tiny, change, field):
    _world, _data, model = tiny
    with pytest.raises(DeliveryInputError, match=field):
        model.predict(pd.DataFrame([{**REQUEST_EXAMPLE, **change}]))


@pytest.mark.parametrize("target", [0.0, 1.0, 1.5, -0.1, "high"])
def test_promise_target_outside_unit_interval(tiny, target):
    _world, _data, model = tiny
    with pytest.raises(ValueError, match="promise_target"):
        model.predict(pd.DataFrame([{**REQUEST_EXAMPLE, "promise_target": target}]))
    with pytest.raises(ValueError, match="promise_target"):
        model.predict(pd.DataFrame([REQUEST_EXAMPLE]), target=target)


def test_unknown_scan_type_falls_back(tiny):
    """Documented fallback: unseen non-critical categories use the <unk> embedding."""
    _world, _data, model = tiny
    req = {**TRANSIT_EXAMPLE, "last_scan_type": "customs_hold"}
    assert len(model.predict(pd.DataFrame([req]))) == 1


def test_explainable_model_contract(tiny):
    from ppx.models.base import ExplainableModel

    _world, data, model = tiny
    assert isinstance(model, ExplainableModel)
    X = model.features(tr.checkout_rows(data.test).head(20))
    assert list(X.columns) == model.feature_names
    s = model.score_features(X.to_numpy())
    assert s.shape == (20,) and np.all(s >= 0)
    assert list(model.background().columns) == model.feature_names


def test_state_round_trip(tiny):
    _world, data, model = tiny
    again = DeliveryModel.from_state(model.state())
    rows = tr.checkout_rows(data.test).head(50)
    pd.testing.assert_frame_equal(model.predict(rows), again.predict(rows))


def test_numpy_path_of_small_batches_equals_the_torch_network(tiny):
    """Serving-sized batches run the network in numpy; they must match torch."""
    from ppx.features import delivery as fd

    _world, data, model = tiny
    feats = fd.delivery_features(data.test.head(40), model.history)
    cats, nums = model.encode(feats)
    torch_cdf = model._raw_cdf_torch(cats, nums, model._start(feats))
    batch = model.raw_cdf(feats)
    one = np.vstack([model.raw_cdf(feats.iloc[[i]]) for i in range(len(feats))])
    np.testing.assert_allclose(batch, torch_cdf, atol=1e-5)
    np.testing.assert_allclose(one, torch_cdf, atol=1e-5)
    rows = tr.checkout_rows(data.test).head(5)
    for i in range(len(rows)):
        est = model.estimate(rows.iloc[i].to_dict())
        assert est["promise_days"] == model.predict(rows.iloc[[i]])["promise_days"].iloc[0]


def test_recalibrator_hits_target_with_censoring():
    rng = np.random.default_rng(0)
    s = rng.uniform(size=20_000)
    cens = rng.uniform(size=20_000) < 0.2
    lb = np.where(cens, s * rng.uniform(size=20_000), s)  # censored: only s >= lb known
    g = Recalibrator.fit(lb, (~cens).astype(float))
    assert g(np.array([0.9]))[0] == pytest.approx(0.9, abs=0.02)


@pytest.mark.slow
def test_coverage_0_9_on_small_world(small_world):
    world, _ = small_world
    data = make_data(world.tables, seed=0)
    model = fit(data.train, data.val, data.history, replace(FAST), progress=False)
    m = tr.evaluate_model(model, data)
    assert 0.87 <= m["coverage_0_9"] <= 0.93


def test_served_model_uses_its_online_recalibration(tiny):
    from ppx.features import delivery as fd
    from ppx.models.delivery.recalibrate import OnlineRecalibration

    _world, data, model = tiny
    rows = tr.checkout_rows(data.val).head(400)
    cdf = model.cdf(fd.delivery_features(rows, model.history))
    online = OnlineRecalibration(window_days=60, min_completed=50)
    ids = rows[C.SHIPMENT_ID].to_numpy()
    start = rows[C.ORDERED_AT].min()
    same_day = np.full(len(rows), start.to_datetime64())
    online.observe(ids, same_day, rows[C.CARRIER], cdf)
    # Every one of those parcels took three weeks: a world far slower than the model's.
    online.deliver(ids, same_day + np.timedelta64(21, "D"))
    online.refit(start + pd.Timedelta(days=30))
    req = pd.DataFrame([REQUEST_EXAMPLE] * len(C.CARRIERS)).assign(carrier=list(C.CARRIERS))
    before = model.predict(req)["promise_days"].to_numpy()
    model.online = online
    try:
        after = model.predict(req)["promise_days"].to_numpy()
    finally:
        model.online = None
    assert np.all(after >= before) and np.all(after[np.isin(C.CARRIERS, list(online.scales))] >= 21)
