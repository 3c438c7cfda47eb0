"""The SHAP report of a churn table model speaks of the table's own rows (accounts,
customers ...), not of the subscription model's subscribers."""

from __future__ import annotations

import re

import pytest

from ppx.explain.labels import entity
from ppx.models.churn.model import ChurnModel


def _model(mode: str, id_column: str | None = None) -> ChurnModel:
    """A churn model's wording surface only (nothing here trains or scores)."""
    return ChurnModel(
        encoder=None, config=None, horizons=[30], mode=mode, info={"id_column": id_column}
    )


@pytest.mark.parametrize(
    ("id_column", "words"),
    [
        ("account_id", "accounts"),
        ("customerID", "customers"),
        ("Member ID", "members"),
        ("id", "customers"),
        (None, "customers"),
    ],
)
def test_a_table_model_s_rows_are_named_by_its_id_column(id_column, words):
    assert entity(_model("table", id_column), "churn") == words


def test_the_subscription_model_s_rows_are_subscribers():
    assert entity(_model("subscriptions"), "churn") == "subscribers"


@pytest.mark.slow
def test_table_report_says_the_table_s_entity_not_subscribers(tmp_path, mlflow_tmp):
    from ppx.models.churn.config import tiny
    from ppx.models.churn.explain_table import build_table_report
    from ppx.models.churn.train import train_table
    from tests.models.churn.test_byo import _table

    path = tmp_path / "accounts.csv"
    _table().rename(columns={"customerID": "account_id"}).to_csv(path, index=False)
    trained = train_table(path, "Churn", id_column="account_id", name="acme", config=tiny())
    report = build_table_report(
        "acme", alias=trained["alias"], max_rows=30, out_dir=tmp_path / "r", log_to_mlflow=False
    )
    text = re.sub(r"<[^>]+>|\s+", " ", report.read_text())
    assert "30 accounts explained" in text
    assert "Across 30 accounts" in text and "account with" in text.lower()
    assert "subscriber" not in text.lower()
