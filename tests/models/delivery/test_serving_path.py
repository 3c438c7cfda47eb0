"""The model service's delivery path computes what the training path computes.

Hundreds of checkout and in-transit requests of a generated world (some optional facts
left out, some promise targets and dates asked) go through the saved and reloaded model
the way the model service sends them: JSON-typed columns, merged into batches of one to
eight. Their features must equal the training frame's exactly, their outputs the frame
path's, and the one-search statistics index a plain search of the history's records.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.features import delivery as fd
from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.dataset import make_data
from ppx.models.delivery.model import fit
from ppx.models.delivery.pyfunc import load_model, save_artifacts
from ppx.models.delivery.schemas import DeliveryRequest

FAST = DeliveryConfig(epochs=4, patience=2, hidden=(32, 16), batch_size=512, threads=1)
N_REQUESTS = 600
FACTS = (
    C.WAREHOUSE,
    C.DEST_REGION,
    C.CARRIER,
    C.SERVICE_LEVEL,
    C.ORDERED_AT,
    C.WEIGHT_KG,
    C.DISTANCE_KM,
    C.ORIGIN_REGION,
    C.PROMISED_DAYS,
    fd.AS_OF,
    fd.PICKED_UP_AT,
    fd.LAST_SCAN_TYPE,
    fd.LAST_SCAN_REGION,
    fd.LAST_SCAN_AT,
    fd.N_SCANS,
)
OPTIONAL = (C.WEIGHT_KG, C.DISTANCE_KM, C.ORIGIN_REGION, C.PROMISED_DAYS)


@pytest.fixture(scope="module")
def served(tiny_world, tmp_path_factory):
    """(training history, reloaded model, request frame, service-sized batches as (rows,
    JSON requests))."""
    world, _ = tiny_world
    data = make_data(world.tables, val_months=2, test_months=2, seed=0)
    model = fit(data.train, data.val, data.history, replace(FAST), progress=False)
    again = load_model(save_artifacts(model, tmp_path_factory.mktemp("delivery_served")))
    rng = np.random.default_rng(4)
    pool = pd.concat([data.val, data.test], ignore_index=True)
    frame = pool.iloc[rng.choice(len(pool), N_REQUESTS, replace=False)][list(FACTS)]
    frame = frame.reset_index(drop=True)
    assert frame[fd.AS_OF].notna().sum() > 100 and frame[fd.AS_OF].isna().sum() > 100
    for col in OPTIONAL:  # left out: the features fall back to lane / warehouse defaults
        gone = rng.random(N_REQUESTS) < 0.15
        frame[col] = frame[col].astype(object).where(~gone, None)
    frame[C.WEIGHT_KG] = pd.to_numeric(frame[C.WEIGHT_KG])
    frame[C.DISTANCE_KM] = pd.to_numeric(frame[C.DISTANCE_KM])
    frame[C.PROMISED_DAYS] = pd.to_numeric(frame[C.PROMISED_DAYS])
    asked = rng.random(N_REQUESTS) < 0.3
    frame["promise_target"] = np.where(asked, rng.choice([0.5, 0.8, 0.95], N_REQUESTS), np.nan)
    dated = rng.random(N_REQUESTS) < 0.2
    days = pd.to_timedelta(rng.integers(-1, 12, N_REQUESTS), unit="D")
    frame["promise_date"] = (frame[C.ORDERED_AT].dt.floor("D") + days).where(dated)
    wire = [_json(row) for row in frame.to_dict("records")]
    cuts = np.cumsum(rng.choice([1, 2, 3, 4, 5, 8], size=N_REQUESTS))
    cuts = np.concatenate([[0], cuts[cuts < N_REQUESTS], [N_REQUESTS]])
    batches = [np.arange(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    batches = [(rows, [wire[i] for i in rows]) for rows in batches]
    return data.history, again, frame, batches


def _json(row: dict) -> dict:
    """One request as the model service passes it on: validated, JSON-typed, unset
    fields left out."""
    facts = {k: v for k, v in row.items() if v is not None and not pd.isna(v)}
    if fd.N_SCANS in facts:
        facts[fd.N_SCANS] = int(facts[fd.N_SCANS])
    for k, v in facts.items():
        if isinstance(v, pd.Timestamp):
            facts[k] = v.isoformat()
    return DeliveryRequest.model_validate(facts).model_dump(mode="json", exclude_none=True)


def _columns(rows: list[dict]) -> dict[str, list]:
    """Requests -> columns (field -> one value per request, None when unset)."""
    keys = dict.fromkeys(k for row in rows for k in row)
    return {k: [row.get(k) for row in rows] for k in keys}


def _served_features(model, columns: dict) -> dict[str, np.ndarray]:
    cols, n = fd._as_columns(columns)
    return fd.delivery_features(fd.parse_times(cols, n), model.history, as_frame=False)


def test_served_features_equal_the_training_frame(served):
    history, model, frame, batches = served
    train = fd.delivery_features(frame, history)
    assert set(fd.NUMERIC) <= set(train.columns)
    for rows, requests in batches:
        got = _served_features(model, _columns(requests))
        assert list(got) == list(train.columns)
        for name in train.columns:
            want = train[name].to_numpy()[rows]
            np.testing.assert_array_equal(got[name], want, err_msg=f"{name} rows {rows}")
    # the weekly statistics carry evidence here (a feature that moved would show)
    assert (train["dest_wk_h_n"] > 0).mean() > 0.5
    assert (train["wh_wk_log_handling_vs_prior"] != 0).mean() > 0.5


def test_training_frame_is_the_same_in_any_row_slices(served, monkeypatch):
    history, _model, frame, _batches = served
    whole = fd.delivery_features(frame, history)
    monkeypatch.setattr(fd, "_QUERY_ROWS", 97)
    monkeypatch.setattr(fd, "_JOIN_ROWS", 5)
    pd.testing.assert_frame_equal(fd.delivery_features(frame, history), whole, check_exact=True)


def test_columns_path_equals_the_frame_path(served):
    _history, model, _frame, batches = served
    for rows, requests in batches:
        got = model.predict_columns(_columns(requests))
        # the model service's frame: the same JSON rows, unset fields left out
        want = model.predict(pd.DataFrame.from_records(requests))
        assert list(got) == list(want.columns)
        for name in want.columns:
            np.testing.assert_array_equal(
                np.asarray(got[name]), want[name].to_numpy(), err_msg=f"{name} rows {rows}"
            )


def test_one_search_equals_a_plain_search_of_the_records(served):
    """Every statistic, now and weeks back, against the last ``k`` records of its key."""
    history, _model, frame, _batches = served
    rng = np.random.default_rng(8)
    rec = history.records
    cutoffs = fd._to_seconds(frame[C.ORDERED_AT].to_numpy())
    for stat, (_keys, _value, k) in fd.STATS.items():
        part = rec[rec["stat"] == stat].sort_values("done_s", kind="stable")
        keys = rng.choice(part["key"].unique(), 40).tolist() + ["no|such|key"]
        cut = rng.choice(cutoffs, len(keys))
        weeks = (0, 2) if stat in fd.WEEKLY_STATS else (0,)
        mean, sd, cnt = history.recent_many([(stat, keys, w) for w in weeks], cut)
        for q, w in enumerate(weeks):
            for i, (key, c) in enumerate(zip(keys, cut - w * 7 * fd.SECONDS_PER_DAY, strict=True)):
                seen = part[(part["key"] == key) & (part["done_s"] < c)]["value"].to_numpy()[-k:]
                assert cnt[q, i] == len(seen), (stat, key, w)
                if len(seen):
                    assert mean[q, i] == pytest.approx(seen.mean(), rel=1e-9, abs=1e-12)
                    assert sd[q, i] == pytest.approx(seen.std() if len(seen) > 1 else 0, abs=1e-6)
                else:
                    assert mean[q, i] == history.fallbacks[stat]
