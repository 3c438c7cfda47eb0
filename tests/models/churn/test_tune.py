"""`ppx tune churn` persists its best configuration and `ppx train churn --params` uses it."""

from __future__ import annotations

import json

import mlflow.pyfunc
import pytest
from typer.testing import CliRunner

import mlflow
from ppx.cli import app
from ppx.models.churn.config import ChurnConfig, load_params

runner = CliRunner()


def test_tune_then_train_uses_tuned_params(tiny_world, mlflow_tmp, tmp_path):
    _, path = tiny_world
    out = tmp_path / "tuned" / "churn_params.json"
    res = runner.invoke(
        app, ["tune", "churn", "--world", str(path), "--trials", "2", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    saved = json.loads(out.read_text())
    tuned = load_params(out)
    assert tuned.to_dict() == saved["config"]
    assert tuned != ChurnConfig()  # random TPE trials: the defaults are not among them
    # The study run carries the same configuration.
    run = mlflow.get_run(saved["mlflow_run_id"])
    assert float(run.data.tags["best.lr"]) == pytest.approx(tuned.lr)

    res = runner.invoke(app, ["train", "churn", "--world", str(path), "--params", str(out)])
    assert res.exit_code == 0, res.output
    # the version this train registered (champion or not: the gate is tested elsewhere)
    served = mlflow.pyfunc.load_model("models:/ppx-churn/1").unwrap_python_model().model
    assert served.config == tuned
    nets = served._ensure_nets()
    if served.info.get("blend_weight") == 0.0:
        # Validation gave the network no weight: the logistic member alone is served.
        assert len(nets) == 1 and nets[0].depth == 0
    else:
        assert tuned.depth == 0 or nets[0].deep[0].out_features == tuned.hidden


def test_params_file_errors_name_the_problem(tmp_path):
    bad = tmp_path / "p.json"
    bad.write_text(json.dumps({"config": {"hiden": 32}}))
    with pytest.raises(ValueError, match="unknown churn config fields \\['hiden'\\]"):
        load_params(bad)
    bad.write_text(json.dumps({"lr": "fast"}))
    with pytest.raises(ValueError, match="'lr' must be float"):
        load_params(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_params(bad)
    with pytest.raises(ValueError, match="does not exist"):
        load_params(tmp_path / "missing.json")
    bad.write_text(json.dumps({"best_params": {"hidden": 16, "lr": 1e-3}}))
    assert load_params(bad) == ChurnConfig(hidden=16, lr=1e-3)
