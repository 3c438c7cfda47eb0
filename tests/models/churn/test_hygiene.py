"""Column hygiene of a user's customer table (ppx.models.churn.hygiene, prepare_table)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ppx.models.churn.hygiene import (
    bootstrap_auc,
    index_like_columns,
    read_user_table,
    resolve_column,
)
from ppx.models.churn.tabular import TableError
from ppx.models.churn.train import prepare_table, split_table, table_model_name


def _table(n=400, seed=0):
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    plan = rng.choice(["basic", "plus", "pro"], n)
    logit = -0.3 - 0.04 * tenure + 1.0 * (plan == "basic")
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customer_id": [f"C{i:04d}" for i in range(n)],
            "tenure": tenure,
            "plan": plan,
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


def _lines():
    out: list[str] = []
    return out, out.append


def test_row_number_and_shuffled_counter_are_dropped_but_real_integers_kept():
    df = _table()
    df.insert(0, "Unnamed: 0", np.arange(len(df)))
    df["row"] = np.random.default_rng(1).permutation(len(df)) + 1
    found = index_like_columns(df, exclude=["Churn"])
    assert set(found) == {"Unnamed: 0", "row"}
    lines, say = _lines()
    _, _, plan, _ = prepare_table(df, "Churn", say=say)
    assert "Unnamed: 0" in plan.dropped and "row" in plan.dropped
    assert "tenure" in plan.numeric
    assert any("dropped 'Unnamed: 0': index-like" in ln for ln in lines)


def test_duplicate_ids_are_grouped_so_no_customer_is_on_both_sides():
    df = _table()
    dup = df.sample(60, random_state=0)
    df = pd.concat([df, dup], ignore_index=True)
    lines, say = _lines()
    rows, y, plan, info = prepare_table(df, "Churn", say=say)
    assert info["id_column"] == "customer_id"  # found by its name
    assert info["duplicate_rows"] == 60 and info["duplicate_ids"] == 60
    assert any("duplicate ids: 60 rows" in ln for ln in lines)
    tr, va, te = split_table(rows, y, None, groups=info["groups"])
    ids = rows["customer_id"].to_numpy()
    assert not set(ids[te]) & set(ids[np.r_[tr, va]])
    assert not set(ids[va]) & set(ids[tr])


def test_near_copy_of_target_refused_unless_forced():
    df = _table(n=1000)
    rng = np.random.default_rng(3)
    copy = (df["Churn"] == "Yes").astype(int).to_numpy()
    flip = rng.random(len(df)) < 0.03  # a 97 % copy of the target
    df["closed_flag"] = np.where(flip, 1 - copy, copy)
    lines, say = _lines()
    _, _, plan, _ = prepare_table(df, "Churn", say=say)
    assert "closed_flag" in plan.leakage and plan.leakage["closed_flag"] >= 0.95
    assert "closed_flag" not in plan.numeric
    assert any("refused 'closed_flag' as probable leakage" in ln for ln in lines)
    _, _, forced, _ = prepare_table(df, "Churn", force_columns=["closed_flag"])
    assert "closed_flag" in forced.numeric


def test_target_matching_only_case_insensitively_gets_did_you_mean():
    df = _table()
    with pytest.raises(TableError, match=r"'churn' not found; did you mean 'Churn'\?"):
        prepare_table(df, "churn")
    with pytest.raises(TableError, match="did you mean 'customer_id'"):
        resolve_column(df, "Customer_ID", "--id")
    with pytest.raises(TableError) as err:
        resolve_column(df, "zzz", "--target")
    assert "did you mean" not in str(err.value)


def test_empty_and_header_only_files_have_their_own_messages(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(TableError, match="empty.csv is empty"):
        read_user_table(empty)
    header = tmp_path / "header.csv"
    header.write_text("customer_id,tenure,Churn\n")
    with pytest.raises(TableError, match=r"header \(3 columns\) but no data rows"):
        read_user_table(header)


def test_semicolon_delimited_cp1252_file_reads_correctly(tmp_path):
    df = _table(n=50)
    df["city"] = "Málaga"
    path = tmp_path / "export.csv"
    path.write_bytes(df.to_csv(index=False, sep=";").encode("cp1252"))
    read = read_user_table(path)
    assert list(read.columns) == list(df.columns)
    assert (read["city"] == "Málaga").all()
    assert read["tenure"].astype(int).tolist() == df["tenure"].tolist()


def test_bootstrap_interval_brackets_the_auc():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 500)
    p = 0.3 * y + rng.random(500)
    lo, hi = bootstrap_auc(y, p, n=300)
    assert lo < roc_auc_score(y, p) < hi and hi - lo < 0.15


def test_registered_name_from_file_or_flag():
    assert table_model_name("data/telco_churn.csv") == "ppx-churn-telco"
    assert table_model_name("Churn.csv") == "ppx-churn-table"
    assert table_model_name("x.csv", "acme") == "ppx-churn-acme"
    assert table_model_name("x.csv", "ppx-acme-churn") == "ppx-acme-churn"
    with pytest.raises(TableError, match="subscription churn model"):
        table_model_name("x.csv", "ppx-churn")


def test_request_schema_is_generated_from_the_tables_columns_and_types():
    from ppx.models.churn.config import ChurnConfig
    from ppx.models.churn.model import ChurnModel
    from ppx.models.churn.table_schema import request_rows, table_request_model
    from ppx.models.churn.tabular import TabularEncoder
    from ppx.models.churn.train import column_types

    df = _table()
    df["monthly fee"] = np.round(np.random.default_rng(0).uniform(10, 90, len(df)), 2)
    rows, y, plan, info = prepare_table(df, "Churn", id_column="customer_id")
    enc = TabularEncoder(plan.numeric, plan.categorical).fit(rows)
    model = ChurnModel(enc, ChurnConfig(), [0], mode="table")
    model.info.update(
        id_column="customer_id",
        column_types=column_types(rows, plan),
        registered_model="ppx-churn-acme",
    )
    Request = table_request_model(model)
    schema = Request.model_json_schema(by_alias=True)
    props = schema["properties"]
    assert {"customer_id", "tenure", "plan", "monthly fee"} <= set(props)
    assert {"type": "integer"} in props["tenure"]["anyOf"]
    assert {"type": "number"} in props["monthly fee"]["anyOf"]
    assert "basic" in props["plan"]["description"]
    req = Request.model_validate({"customer_id": "C1", "tenure": 3, "plan": "pro"})
    assert request_rows([req])[0]["monthly fee"] is None
    with pytest.raises(ValueError):
        Request.model_validate({"tenure": "three"})
    with pytest.raises(ValueError):
        Request.model_validate({"tenure": 3, "not_a_column": 1})


def test_a_time_column_with_an_unreadable_value_names_the_row_and_the_value():
    raw = pd.DataFrame(
        {
            "snapshot": ["2025-01-31", "2025-02-28", "31.03.2025", "2025-04-30"] * 5,
            "spend": np.arange(20.0),
            "Churn": ["Yes", "No"] * 10,
        }
    )
    raw.loc[0, "Churn"] = None  # a blank target row first: row numbers stay the file's
    with pytest.raises(TableError) as err:
        prepare_table(raw, "Churn", None, "snapshot", [])
    text = str(err.value)
    assert "--time column 'snapshot'" in text
    assert "5 value(s)" in text and "[2, 6, 10, 14, 18]" in text
    assert "'31.03.2025'" in text
