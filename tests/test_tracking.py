"""The promotion gate and registry helpers against a temporary tracking store."""

from __future__ import annotations

import pandas as pd
import pytest

import mlflow
from ppx import tracking


class ConstantModel(mlflow.pyfunc.PythonModel):
    """A pyfunc that predicts a constant: enough to exercise the registry."""

    def __init__(self, value: float):
        self.value = value

    def predict(self, context, model_input, params=None):
        return pd.Series([self.value] * len(model_input))


def _register(value: float, model: str = "delivery"):
    with tracking.start_run(model, dataset=pd.DataFrame({"x": [1, 2]})) as run:
        version = tracking.log_pyfunc_model(
            model, ConstantModel(value), input_example=pd.DataFrame({"x": [1.0]})
        )
    return run, version


def _score(uri: str) -> float:
    """Holdout score of a model: closeness of its constant to 1.0 (higher is better)."""
    pred = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"x": [0.0]}))
    return -abs(float(pred.iloc[0]) - 1.0)


def _beats(candidate: float, baseline: float, head: str = "delivery"):
    return tracking.BaselineCheck(head, "score", candidate, "constant_baseline", baseline)


def test_gate_needs_the_baselines_then_the_champion(mlflow_tmp):
    run, v1 = _register(0.5)
    assert run.data.tags["ppx.dataset_digest"]
    score = _score(f"runs:/{run.info.run_id}/model")
    first = tracking.promote(
        "delivery", v1, "score", score, _score, [_beats(score, -0.9)], heads=("delivery",)
    )
    assert first.promoted and first.alias == "champion"
    assert "no champion yet" in first.reason and "constant_baseline" in first.reason

    _, v2 = _register(0.0)  # worse: further from 1.0
    worse = tracking.promote("delivery", v2, "score", -1.0, _score, [_beats(-1.0, -1.5)])
    assert not worse.promoted and worse.alias == "challenger"
    assert "champion v1" in worse.reason
    assert tracking.get_alias_version("delivery").version == v1.version

    _, v3 = _register(0.9)  # better than the champion, and than its baseline
    better = tracking.promote("delivery", v3, "score", -0.1, _score, [_beats(-0.1, -0.9)])
    assert better.promoted
    assert tracking.get_alias_version("delivery").version == v3.version
    loaded = mlflow.pyfunc.load_model(tracking.model_uri("delivery"))
    assert float(loaded.predict(pd.DataFrame({"x": [0.0]})).iloc[0]) == pytest.approx(0.9)


def test_a_first_model_worse_than_its_baseline_is_not_champion(mlflow_tmp):
    from mlflow import MlflowClient

    _, v1 = _register(0.5)
    result = tracking.promote(
        "delivery", v1, "score", -0.5, _score, [_beats(-0.5, -0.2)], heads=("delivery",)
    )
    assert not result.promoted and result.alias == "challenger"
    assert "does not beat constant_baseline" in result.reason
    assert tracking.get_alias_version("delivery") is None
    tag = MlflowClient().get_model_version("ppx-delivery", v1.version).tags["ppx.promotion"]
    assert tag == result.reason


def test_every_served_head_must_beat_its_baseline(mlflow_tmp):
    _, v1 = _register(0.5, "fraud")
    checks = [_beats(0.6, 0.5, "return"), _beats(0.3, 0.4, "claim")]
    one_head_loses = tracking.promote(
        "fraud", v1, "score", 0.45, _score, checks, heads=("return", "claim")
    )
    assert not one_head_loses.promoted and "claim score 0.3000" in one_head_loses.reason
    _, v2 = _register(0.5, "fraud")
    unchecked = tracking.promote(
        "fraud", v2, "score", 0.6, _score, checks[:1], heads=("return", "claim")
    )
    assert not unchecked.promoted and "no baseline comparison for claim" in unchecked.reason
    assert tracking.get_alias_version("fraud") is None


def test_missing_alias_is_none(mlflow_tmp):
    assert tracking.get_alias_version("churn") is None


def test_study_trials_are_nested_runs(mlflow_tmp):
    with tracking.start_run("churn", run_name="tune") as parent:
        study = tracking.run_study(
            "churn",
            lambda t: -((t.suggest_float("x", -2, 2) - 1) ** 2),
            n_trials=6,
            show_progress_bar=False,
        )
    children = mlflow.search_runs(
        experiment_names=["ppx-churn"],
        filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'",
    )
    assert len(children) == 6
    assert "best.x" in mlflow.get_run(parent.info.run_id).data.params
    assert study.best_value <= 0


def test_each_configure_follows_the_settings_but_a_user_uri_wins(tmp_path, monkeypatch):
    from ppx.config import get_settings

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(tracking, "_uri_written_by_ppx", None)  # restored with the env
    monkeypatch.setenv("PPX_MLFLOW_DIR", str(tmp_path / "a"))
    get_settings.cache_clear()
    first = tracking.configure()
    monkeypatch.setenv("PPX_MLFLOW_DIR", str(tmp_path / "b"))
    get_settings.cache_clear()
    second = tracking.configure()
    assert "/a/" in first and "/b/" in second  # MLflow's own env write does not pin "a"
    user = f"sqlite:///{tmp_path / 'user.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", user)
    assert tracking.configure() == user
    assert tracking.configure() == user  # still the user's on the next call
    get_settings.cache_clear()


def test_missing_alias_hint_names_the_challenger_and_the_flag(mlflow_tmp):
    _, v1 = _register(0.5)
    gate = tracking.promote(
        "delivery", v1, "score", -0.5, _score, [_beats(-0.5, 0.0)], heads=("delivery",)
    )
    assert gate.alias == "challenger"
    assert tracking.get_alias_version("delivery", "champion") is None
    hint = tracking.missing_alias_hint("delivery", "champion")
    assert f"challenger -> v{v1.version}" in hint
    assert "--alias challenger" in hint


def test_missing_alias_hint_lists_registered_models_of_the_family(mlflow_tmp):
    _register(0.5, model="churn-telco")
    hint = tracking.missing_alias_hint("churn-orange", "champion")
    assert "ppx-churn-orange is not registered" in hint
    assert "ppx-churn-telco" in hint


def test_configure_turns_mlflows_artifact_bars_off_unless_the_user_set_them(
    mlflow_tmp, monkeypatch
):
    from mlflow.environment_variables import MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR

    monkeypatch.delenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", raising=False)
    tracking.configure()
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is False
    monkeypatch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "true")
    tracking.configure()
    assert MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR.get() is True
