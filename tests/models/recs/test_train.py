"""Training through MLflow: register ppx-recs, gate, load by alias, serve a request."""

from __future__ import annotations

import pandas as pd
import pytest

from ppx.data import columns as C
from ppx.models.recs.config import RecsConfig
from ppx.models.recs.pyfunc import REQUEST_EXAMPLE


@pytest.mark.slow
def test_train_register_gate_and_serve(tiny_world, mlflow_tmp):
    import torch

    import mlflow
    from ppx import tracking
    from ppx.models.recs.train import train_and_register

    torch.set_num_threads(1)
    _, path = tiny_world
    cfg = RecsConfig(epochs=2, d_model=32, max_minutes=1.0, threads=1, repeat_epochs=30)
    first = train_and_register(path, cfg, progress=False)
    assert first.metrics["ndcg_10"] > first.metrics["popularity_ndcg_10"]
    assert first.alias == "champion", first.reason
    second = train_and_register(path, cfg, progress=False)  # same data, same seed: a tie
    assert second.alias == "challenger" and "same holdout" in second.reason
    model = mlflow.pyfunc.load_model(tracking.model_uri("recs"))
    out = model.predict(pd.DataFrame([REQUEST_EXAMPLE, {C.CUSTOMER_ID: 10**9, "k": 3}]))
    assert len(out) == 2 and len(out.loc[1, "product_ids"]) == 3
    assert out.loc[1, "source"] == "popularity_fallback"
