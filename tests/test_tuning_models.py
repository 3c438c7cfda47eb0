"""``ppx tune MODEL``: one tuning path for every model with a tuning adapter.

Delivery runs the shared-study path end to end (two workers on a throwaway PostgreSQL
study, one registration); every adapter runs one trial on a SQLite study; bad requests
(unknown model, a model without tuning, bad storage URLs) fail before anything runs.
"""

from __future__ import annotations

import json
import math

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import mlflow
from ppx import tuning
from ppx.cli import app
from ppx.models import registry

runner = CliRunner()

TUNABLE = ["delivery", "churn", "fraud", "recs"]


def _nested_trial_runs(model: str, parent: str):
    return mlflow.search_runs(
        experiment_names=[f"ppx-{model}"],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
    )


def test_every_model_but_feedback_has_a_tuning_adapter():
    assert tuning.tunable_models() == TUNABLE
    for name in TUNABLE:
        how = tuning.how_to_tune(name)
        base = how.default_config()
        assert isinstance(base, registry.get(name).load("config"))
        assert how.with_epochs(base, 3) != base  # --epochs reaches the config


def test_delivery_two_workers_share_one_study_and_register_the_best_once(
    tiny_world, mlflow_tmp, postgres, tmp_path
):
    _, world = tiny_world
    url = postgres.create_database("optuna_delivery_two_workers")
    out = tmp_path / "delivery_params.json"
    args = ["tune", "delivery", "--world", str(world), "--storage", url, "--study", "dlv"]
    res = runner.invoke(
        app, [*args, "--workers", "2", "--trials", "2", "--epochs", "1", "--register",
              "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output

    study = optuna.load_study(study_name="dlv", storage=url)
    assert sorted(t.number for t in study.trials) == [0, 1]  # no trial number twice
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert study.direction.name == "MINIMIZE"  # a pinball loss

    parent = study.user_attrs[tuning.PARENT_RUN_ATTR]
    runs = _nested_trial_runs("delivery", parent)
    assert sorted(runs["tags.ppx.optuna_trial"].astype(int)) == [0, 1]
    assert runs["tags.ppx.worker"].nunique() == 2  # one trial in each worker process
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == set(runs["run_id"])

    versions = mlflow.MlflowClient().search_model_versions("name='ppx-delivery'")
    assert len(versions) == 1
    best = study.best_trial
    assert versions[0].tags[tuning.TRIAL_TAG] == str(best.number)
    assert versions[0].tags[tuning.STUDY_TAG] == "dlv"
    how = tuning.how_to_tune("delivery")
    expected = how.config_of(how.with_epochs(how.default_config(), 1), best.params)
    served = mlflow.pyfunc.load_model("models:/ppx-delivery/1").unwrap_python_model().model
    assert served.cfg.to_params() == expected.to_params()
    assert served.cfg.hidden[0] == best.params["width"]  # the adapter maps width -> hidden
    saved = json.loads(out.read_text())
    assert saved["config"]["lr"] == pytest.approx(best.params["lr"])
    assert saved["best_validation_pinball"] == pytest.approx(best.value)

    # Another machine joins with the same --study: its trial continues the numbering and
    # nests under the same parent; registering again registers the best trial once.
    base = how.with_epochs(how.default_config(), 1)
    joined = tuning.tune("delivery", world, 1, base, url, "dlv", progress=False)
    assert joined.parent_run_id == parent and joined.trials_total == 3
    again = tuning.tune("delivery", world, 0, base, url, "dlv", register=True, progress=False)
    best = optuna.load_study(study_name="dlv", storage=url).best_trial
    tagged = [
        v
        for v in mlflow.MlflowClient().search_model_versions("name='ppx-delivery'")
        if v.tags.get(tuning.TRIAL_TAG) == str(best.number)
    ]
    assert len(tagged) == 1
    assert (again.reused_version is None) == (best.number == 2)


@pytest.mark.parametrize(
    "model",
    [
        # delivery and churn run their shared PostgreSQL study by default (above and in
        # tests/test_tuning.py); their single trial here repeats it on SQLite.
        pytest.param("delivery", marks=pytest.mark.slow),
        pytest.param("churn", marks=pytest.mark.slow),
        "fraud",
        "recs",
    ],
)
def test_one_trial_of_each_adapter_on_a_sqlite_study(model, tiny_world, mlflow_tmp, tmp_path):
    _, world = tiny_world
    spec = registry.get(model)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    res = tuning.tune(model, world, 1, spec.tiny_config(), url, "one", progress=False)
    study = optuna.load_study(study_name="one", storage=url)
    (trial,) = study.trials
    assert trial.state == TrialState.COMPLETE and math.isfinite(trial.value)
    assert res.best_value == trial.value and res.best_params == trial.params
    if tuning.how_to_tune(model).direction == "maximize":  # roc_auc, pr_auc, ndcg_10
        assert 0.0 <= trial.value <= 1.0
    else:  # a pinball loss in days
        assert trial.value > 0.0
    # The best configuration carries the trial's parameters (delivery's width -> hidden).
    chosen = tuning.config_dict(res.config)
    for name, value in trial.params.items():
        if name == "width":
            assert chosen["hidden"] == (value, max(16, value // 2))
        else:
            assert chosen[name] == value
    runs = _nested_trial_runs(model, res.parent_run_id)
    assert list(runs["tags.ppx.optuna_trial"]) == ["0"]
    assert {k.removeprefix("params.") for k in runs if k.startswith("params.")} == set(trial.params)


def test_unknown_model_and_model_without_tuning_are_refused(tiny_world, mlflow_tmp):
    _, world = tiny_world
    res = runner.invoke(app, ["tune", "nope", "--world", str(world)])
    said = " ".join(res.output.split())
    assert res.exit_code == 2
    assert "unknown model 'nope'" in said and "delivery, churn, fraud, recs" in said
    res = runner.invoke(app, ["tune", "feedback", "--world", str(world)])
    assert res.exit_code == 2 and "model 'feedback' has no tuning" in " ".join(res.output.split())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "is not a database URL"),
        ("nosuchdb://h/db", "no database driver for 'nosuchdb'"),
        ("sqlite:///{tmp}/missing/optuna.db", "does not exist"),
        ("sqlite://", "in-memory SQLite"),
        ("postgresql://ppx:secret@127.0.0.1:{port}/optuna", "cannot open the study storage"),
    ],
    ids=["garbage", "driver", "sqlite-folder", "sqlite-memory", "unreachable"],
)
def test_bad_storage_urls_fail_with_a_clear_message(url, message, tiny_world, mlflow_tmp, tmp_path):
    from ppx.local_postgres import free_port

    _, world = tiny_world
    url = url.format(tmp=tmp_path, port=free_port())  # nothing listens on a free port
    res = runner.invoke(app, ["tune", "fraud", "--world", str(world), "--storage", url])
    assert res.exit_code == 2, res.output
    said = " ".join(res.output.split())  # the terminal wraps long lines
    assert message in said
    assert "secret" not in said  # passwords are masked
    assert not mlflow.search_runs(search_all_experiments=True).shape[0]  # nothing started


def test_a_baseline_is_tuned_in_a_study_of_its_own_and_never_registered(
    tiny_world, mlflow_tmp, tmp_path
):
    _, world = tiny_world
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    out = tmp_path / "fraud_lightgbm_params.json"
    args = ["tune", "fraud", "--world", str(world), "--storage", url, "--baseline", "lightgbm"]
    res = runner.invoke(app, [*args, "--study", "trees", "--trials", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    (trial,) = optuna.load_study(study_name="trees", storage=url).trials
    assert set(trial.params) == {
        "num_leaves",
        "learning_rate",
        "min_child_samples",
        "colsample_bytree",
    }
    saved = json.loads(out.read_text())["config"]  # the params land in FraudConfig.lgb_*
    assert saved["lgb_num_leaves"] == trial.params["num_leaves"]
    assert saved["lgb_learning_rate"] == pytest.approx(trial.params["learning_rate"])
    runs = mlflow.search_runs(experiment_names=["ppx-fraud"])
    assert set(runs["tags.ppx.learner"]) == {"lightgbm"}  # parent and trial

    # The network's search space never joins the baseline's study, and baselines are
    # not registered.
    res = runner.invoke(app, ["tune", "fraud", "--world", str(world), "--storage", url,
                              "--study", "trees", "--trials", "0"])  # fmt: skip
    assert res.exit_code == 2 and "tunes lightgbm, not ppx" in " ".join(res.output.split())
    res = runner.invoke(app, [*args, "--study", "trees", "--trials", "0", "--register"])
    assert res.exit_code == 2 and "only finds the baseline's parameters" in " ".join(
        res.output.split()
    )
    assert not mlflow.MlflowClient().search_model_versions("name='ppx-fraud'")
    res = runner.invoke(app, ["tune", "recs", "--world", str(world), "--baseline", "lightgbm"])
    assert res.exit_code == 2 and "has no baseline 'lightgbm'" in " ".join(res.output.split())
