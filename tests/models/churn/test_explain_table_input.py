"""Explaining a table model on a file without one of its columns is refused, as scoring is."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest

from ppx.explain import sources
from ppx.models.churn.explain_table import build_table_report
from ppx.models.churn.tabular import TableError


def test_a_missing_model_column_is_named(tmp_path, monkeypatch):
    model = SimpleNamespace(
        mode="table",
        encoder=SimpleNamespace(numeric=["tenure", "MonthlyCharges"], categorical=["Contract"]),
        info={"table": "telco.csv"},
    )
    monkeypatch.setattr(
        sources,
        "load_explainable",
        lambda name, run_id=None, alias=None: SimpleNamespace(model=model, version="1", run_id=""),
    )
    table = tmp_path / "export.csv"
    pd.DataFrame({"MonthlyCharges": [20.0, 70.5], "Contract": ["One year", "Two year"]}).to_csv(
        table, index=False
    )
    with pytest.raises(TableError, match=r"export.csv: the model's column\(s\) \['tenure'\]"):
        build_table_report("telco", table, log_to_mlflow=False, out_dir=tmp_path / "r")
    assert not (tmp_path / "r").exists()  # nothing half-written
