"""A customer-table model's report shows its own run's holdout figures and gate verdict."""

from __future__ import annotations

import pandas as pd

import mlflow
from ppx import tracking
from ppx.explain.report import ReportInfo, describe_run


class ConstantModel(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):
        return pd.Series([0.5] * len(model_input))


def test_describe_run_reads_the_table_models_own_registered_version(mlflow_tmp):
    with tracking.start_run("churn-acme", dataset=pd.DataFrame({"x": [1, 2]})) as run:
        mlflow.log_metrics({"roc_auc": 0.81, "logreg_roc_auc": 0.79, "train_seconds": 3.0})
        version = tracking.log_pyfunc_model(
            "churn-acme", ConstantModel(), input_example=pd.DataFrame({"x": [1.0]})
        )
    mlflow.MlflowClient().set_model_version_tag(
        "ppx-churn-acme", version.version, "ppx.promotion", "champion: beats logreg"
    )
    info = ReportInfo(
        model_name="churn", registered_model="ppx-churn-acme", version=str(version.version)
    )
    describe_run(info, "churn", run.info.run_id)
    assert info.quality == {"logreg roc auc": 0.79, "roc auc": 0.81}
    assert info.verdict == "champion: beats logreg"
