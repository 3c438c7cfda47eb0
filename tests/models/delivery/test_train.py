"""Training pipeline: MLflow run, pyfunc round trip, promotion gate, CLI wiring."""

from __future__ import annotations

import pandas as pd
import pytest

from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.pyfunc import REQUEST_EXAMPLE, TRANSIT_EXAMPLE

CFG = dict(
    epochs=3, patience=1, hidden=(32, 16), batch_size=512, threads=1, val_months=2, test_months=2
)


@pytest.mark.slow
def test_train_registers_and_gates(tiny_world, mlflow_tmp):
    import mlflow
    from ppx import tracking
    from ppx.models.delivery.train import train

    _world, path = tiny_world
    first = train(path, DeliveryConfig(**CFG), progress=False)
    assert first.version is not None and first.metrics["pinball_0_9"] > 0
    # a first model is champion only if it beats the run's own simple baselines
    beats = all(
        first.metrics["pinball_0_9"] < b["pinball_0_9"] for b in first.details["baselines"].values()
    )
    assert first.promoted == beats
    assert first.promoted, f"the tiny delivery model should beat its baselines: {first.reason}"
    # A crippled candidate: a 2-day horizon cannot express the tiny world's 3-9 day transits,
    # so its 0.9 quantile is far too early. It must not replace the champion.
    worse = train(path, DeliveryConfig(**{**CFG, "epochs": 1, "d_max": 2}), progress=False)
    assert worse.metrics["pinball_0_9"] > first.metrics["pinball_0_9"]
    assert not worse.promoted and worse.alias == "challenger"
    assert "does not beat" in worse.reason
    assert tracking.get_alias_version("delivery").version == first.version
    loaded = mlflow.pyfunc.load_model(tracking.model_uri("delivery"))
    out = loaded.predict(pd.DataFrame([REQUEST_EXAMPLE, TRANSIT_EXAMPLE]))
    assert list(out["stage"]) == ["checkout", "transit"]
    assert (out["promise_days"] >= out["p50_days"]).all()
    assert out["p_on_time"].between(0, 1).all()
    # The loaded object is the ExplainableModel serving and SHAP use.
    from ppx.models.base import ExplainableModel

    assert isinstance(loaded.unwrap_python_model().model, ExplainableModel)


def test_cli_registers_delivery_commands():
    from typer.testing import CliRunner

    from ppx.cli import app

    runner = CliRunner()
    for group in ("train", "tune", "evaluate", "bench"):
        res = runner.invoke(app, [group, "delivery", "--help"])
        assert res.exit_code == 0, res.output
