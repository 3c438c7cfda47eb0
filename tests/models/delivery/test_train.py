"""Training pipeline: MLflow run, pyfunc round trip, promotion gate, CLI wiring."""

from __future__ import annotations

import pandas as pd
import pytest

from ppx.models.delivery.config import DeliveryConfig
from ppx.models.delivery.pyfunc import REQUEST_EXAMPLE, TRANSIT_EXAMPLE

CFG = dict(
    epochs=12, patience=2, hidden=(32, 16), batch_size=512, threads=1, val_months=2, test_months=2
)


@pytest.mark.slow
def test_train_registers_and_gates(tiny_world, mlflow_tmp):
    import mlflow
    from ppx import tracking
    from ppx.models.delivery.train import train

    _world, path = tiny_world
    # The first model of a name is not champion by default: three epochs leave its 0.9
    # quantile worse than the lane's historical quantile of the same run.
    early = train(path, DeliveryConfig(**{**CFG, "epochs": 3, "patience": 1}), progress=False)
    lane = early.details["baselines"]["lane_quantile"]["pinball_0_9"]
    assert early.metrics["pinball_0_9"] > lane
    assert not early.promoted and early.alias == "challenger"
    assert "does not beat the baselines" in early.reason and "lane_quantile" in early.reason
    assert tracking.get_alias_version("delivery") is None
    # Trained to convergence it beats both baselines and, with no champion yet, is promoted.
    first = train(path, DeliveryConfig(**CFG), progress=False)
    for baseline in first.details["baselines"].values():
        assert first.metrics["pinball_0_9"] < baseline["pinball_0_9"]
    assert first.promoted and first.alias == "champion", first.reason
    # A crippled candidate (one epoch of a 4-unit network at a tiny learning rate) is
    # worse on the same holdout and must not replace the champion.
    crippled = {**CFG, "epochs": 1, "hidden": (4,), "lr": 1e-4}
    worse = train(path, DeliveryConfig(**crippled), progress=False)
    assert worse.metrics["pinball_0_9"] > first.metrics["pinball_0_9"]
    assert not worse.promoted and worse.alias == "challenger"
    assert "does not beat" in worse.reason
    assert str(tracking.get_alias_version("delivery").version) == first.version
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
