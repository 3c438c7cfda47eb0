"""Bring your own table: `ppx train churn --table FILE --target COL --id COL`."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.models.churn.tabular import TableError, infer_columns, parse_target
from ppx.models.churn.train import prepare_table

runner = CliRunner()


def _table(n=600, seed=0):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    charges = rng.uniform(20, 110, n).round(2)
    logit = -0.5 - 0.04 * tenure + 1.2 * (contract == "Month-to-month") + 0.01 * (charges - 60)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    total = (tenure * charges).round(2).astype(str)
    total[tenure == 0] = " "  # blank, as in Telco
    return pd.DataFrame(
        {
            "customerID": [f"C{i:05d}" for i in range(n)],
            "tenure": tenure,
            "Contract": contract,
            "MonthlyCharges": charges,
            "TotalCharges": total,
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


def test_cli_trains_on_table_with_blanks_yes_no_target_and_id(tmp_path, mlflow_tmp):
    path = tmp_path / "customers.csv"
    _table().to_csv(path, index=False)
    res = runner.invoke(
        app, ["train", "churn", "--table", str(path), "--target", "Churn", "--id", "customerID"]
    )
    assert res.exit_code == 0, res.output
    assert "positive label 'Yes'" in res.output
    assert "ppx-churn-customers" in res.output
    assert "split (stratified at random): train 360, validation 120, test 120" in res.output
    assert "bootstrap 95 % interval" in res.output


@pytest.mark.slow
def test_named_table_model_predicts_and_scores_the_file_as_pandas_reads_it(tmp_path, mlflow_tmp):
    import mlflow.pyfunc

    path = tmp_path / "acme_churn.csv"
    _table().to_csv(path, index=False)
    args = ["train", "churn", "--table", str(path), "--target", "Churn", "--name", "acme"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "id column 'customerID'" in res.output  # found by its name
    assert "registered ppx-churn-acme v1" in res.output
    # the promotion gate decides champion or challenger (tested on its own); use what it said
    alias = re.search(r"registered ppx-churn-acme v1 -> (\w+)", res.output).group(1)
    native = pd.read_csv(path)  # ints, floats, objects: the file's own types
    assert native["tenure"].dtype.kind == "i"
    pm = mlflow.pyfunc.load_model(f"models:/ppx-churn-acme@{alias}")
    pred = pm.predict(native)
    assert len(pred) == len(native) and pred["p_churn"].between(0, 1).all()
    assert (pred["customerID"] == native["customerID"]).all()

    new_export = tmp_path / "next_month.csv"
    native.drop(columns="Churn").head(250).to_csv(new_export, index=False, sep=";")
    out = tmp_path / "scores.parquet"
    res = runner.invoke(
        app,
        [
            "score",
            "churn",
            "--table",
            str(new_export),
            "--model",
            "acme",
            "--out",
            str(out),
            "--chunk",
            "100",
            "--alias",
            alias,
        ],
    )
    assert res.exit_code == 0, res.output
    scores = pd.read_parquet(out)
    assert len(scores) == 250
    assert list(scores.columns[:3]) == ["customerID", "probability", "model_version"]
    assert (scores["model_version"] == "ppx-churn-acme v1").all()
    assert np.allclose(scores["probability"], pred["p_churn"].head(250))
    assert (scores["reason_1"].str.len() > 0).mean() > 0.9

    res = runner.invoke(
        app,
        [
            "explain",
            "churn",
            "--model",
            "acme",
            "--alias",
            alias,
            "--rows",
            "30",
            "--out",
            str(tmp_path / "r"),
        ],
    )
    assert res.exit_code == 0, res.output
    html = next((tmp_path / "r").glob("*.html")).read_text()
    assert "tenure" in html and "ppx-churn-acme" in html


def test_cli_refuses_one_class_target(tmp_path, mlflow_tmp):
    df = _table()
    df["Churn"] = "No"
    path = tmp_path / "one_class.csv"
    df.to_csv(path, index=False)
    res = runner.invoke(app, ["train", "churn", "--table", str(path), "--target", "Churn"])
    assert res.exit_code != 0
    assert "one class" in res.output and "'Churn'" in res.output


def test_cli_reports_missing_target(tmp_path, mlflow_tmp):
    path = tmp_path / "t.csv"
    _table().to_csv(path, index=False)
    res = runner.invoke(app, ["train", "churn", "--table", str(path), "--target", "churned"])
    assert res.exit_code != 0 and "'churned' not found" in res.output


def test_types_inferred_and_id_left_out():
    df = _table()
    df2, y, plan, info = prepare_table(df.astype(str), "Churn", id_column="customerID")
    assert info["positive_label"] == "Yes"
    assert set(plan.numeric) == {"tenure", "MonthlyCharges", "TotalCharges"}
    assert plan.categorical == ["Contract"]
    assert "customerID" not in plan.numeric + plan.categorical


def test_leaky_column_reported_and_forced():
    df = _table()
    df["cancel_reason"] = np.where(df["Churn"] == "Yes", "moved", "")
    _, y, plan, _ = prepare_table(df, "Churn", id_column="customerID")
    assert "cancel_reason" in plan.leakage and "cancel_reason" not in plan.categorical
    _, _, forced, _ = prepare_table(
        df, "Churn", id_column="customerID", force_columns=["cancel_reason"]
    )
    assert "cancel_reason" in forced.categorical


def test_target_parsing():
    y, info = parse_target(pd.Series(["Yes", "No", "", "no"]), "Churn")
    assert info["positive_label"] == "Yes" and np.isnan(y[2])
    y, _ = parse_target(pd.Series([0, 1, 1, 0]), "churned")
    assert list(y) == [0, 1, 1, 0]
    with pytest.raises(TableError, match="binary"):
        parse_target(pd.Series(["a", "b", "c"]), "status")
    with pytest.raises(TableError, match="unknown columns"):
        infer_columns(_table(), np.zeros(600), exclude=["Churn"], force=["nope"])
