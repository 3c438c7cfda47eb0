"""Shared Optuna studies: many workers on one PostgreSQL study, one registration, dead
workers' trials failed, SQLite refused for more than one worker."""

from __future__ import annotations

import json
import time

import optuna
import pytest
from optuna.trial import TrialState
from typer.testing import CliRunner

import mlflow
from ppx import tuning
from ppx.cli import app
from ppx.models.churn.config import ChurnConfig

runner = CliRunner()


def _versions() -> list:
    return mlflow.MlflowClient().search_model_versions("name='ppx-churn'")


@pytest.mark.parametrize(
    ("trials", "epochs"),
    [(2, 1), pytest.param(6, 2, marks=pytest.mark.slow, id="3-trials-per-worker")],
    ids=["1-trial-per-worker", None],
)
def test_two_workers_share_one_study_and_register_the_best_once(
    trials, epochs, tiny_world, mlflow_tmp, postgres, tmp_path
):
    _, world = tiny_world
    url = postgres.create_database(f"optuna_two_workers_{trials}")
    out = tmp_path / "churn_params.json"
    args = ["tune", "churn", "--world", str(world), "--storage", url, "--study", "shared"]
    res = runner.invoke(
        app, [*args, "--workers", "2", "--trials", str(trials), "--epochs", str(epochs),
              "--register", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output

    study = optuna.load_study(study_name="shared", storage=url)
    numbers = [t.number for t in study.trials]
    assert sorted(numbers) == list(range(trials))  # the requested total, no number twice
    assert all(t.state == TrialState.COMPLETE for t in study.trials)

    # Every trial is a nested run of the study's one parent run, from two processes.
    parent = study.user_attrs[tuning.PARENT_RUN_ATTR]
    runs = mlflow.search_runs(
        experiment_names=["ppx-churn"],
        filter_string=f"tags.`mlflow.parentRunId` = '{parent}'",
    )
    assert sorted(runs["tags.ppx.optuna_trial"].astype(int)) == list(range(trials))
    assert runs["tags.ppx.worker"].nunique() == 2
    assert {t.user_attrs["mlflow_run_id"] for t in study.trials} == set(runs["run_id"])

    # The best trial was trained and registered once, tagged with its study and trial.
    versions = _versions()
    assert len(versions) == 1
    best = study.best_trial
    assert versions[0].tags[tuning.STUDY_TAG] == "shared"
    assert versions[0].tags[tuning.TRIAL_TAG] == str(best.number)
    served = mlflow.pyfunc.load_model("models:/ppx-churn/1").unwrap_python_model().model
    assert served.config == ChurnConfig(max_epochs=epochs).replace(**best.params)
    assert json.loads(out.read_text())["config"] == served.config.to_dict()
    assert mlflow.get_run(parent).data.tags["ppx.registered_version"] == "1"

    # Another machine joins the same study with the same name: its trials continue the
    # numbering; asking to register the unchanged best again registers nothing new.
    base = ChurnConfig(max_epochs=epochs)
    again = tuning.tune("churn", world, 0, base, url, "shared", register=True, progress=False)
    assert again.trials_total == trials and again.train is None
    assert again.reused_version == "1"
    assert len(_versions()) == 1


def test_sqlite_storage_refuses_more_than_one_worker(tiny_world, mlflow_tmp, tmp_path):
    _, world = tiny_world
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    res = runner.invoke(
        app, ["tune", "churn", "--world", str(world), "--storage", url, "--workers", "2"]
    )
    assert res.exit_code == 2
    assert "SQLite" in res.output and "postgresql://" in res.output
    assert not (tmp_path / "optuna.db").exists()  # refused before anything was written


def test_a_dead_workers_trial_is_failed_and_queued_again(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    store = tuning.storage(url, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(study_name="s", storage=store)
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    store.record_heartbeat(trial._trial_id)  # what a worker's heartbeat thread writes
    time.sleep(2.5)  # the worker died: no heartbeat for longer than the grace period
    # Every worker does this before it starts a trial; every command on opening the study.
    tuning.fail_stale_trials(study)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    assert states == [TrialState.FAIL, TrialState.WAITING]
    retry = study.get_trials(deepcopy=False)[1]
    assert retry.params == trial.params  # the same parameters are tried again


def test_trials_split_over_workers():
    assert tuning.shares(5, 2) == [3, 2]
    assert tuning.shares(1, 3) == [1]
    assert tuning.shares(0, 2) == []


def test_a_machine_with_its_own_tracking_store_joins_the_study(tiny_world, tmp_path, monkeypatch):
    """Without a shared tracking server the study is still one: the second machine's
    trials continue the numbering and name the first machine's parent run."""
    _, world = tiny_world
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    base = ChurnConfig(max_epochs=1)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'machine-a.db'}")
    first = tuning.tune("churn", world, 1, base, url, "joined", progress=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'machine-b.db'}")
    second = tuning.tune("churn", world, 1, base, url, "joined", progress=False)
    runs = mlflow.search_runs(experiment_names=["ppx-churn"])
    assert second.parent_run_id == first.parent_run_id
    assert second.trials_total == 2
    assert list(runs["tags.ppx.optuna_trial"]) == ["1"]
    assert list(runs["tags.mlflow.parentRunId"]) == [first.parent_run_id]
