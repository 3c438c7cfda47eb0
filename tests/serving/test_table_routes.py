"""Churn table models behind ``POST /churn/table/<name>``: schema from the table, scores.

A small table with a real signal is trained into a registry of its own (alias
``champion``); a second registered table model without that alias must not be served.
"""

from __future__ import annotations

import os

import httpx
import numpy as np
import pandas as pd
import pytest

from ppx.config import get_settings
from serving.table_routes import short_name, wanted

pytestmark = pytest.mark.serving


def _customers(n: int = 500, seed: int = 3) -> pd.DataFrame:
    """Customers whose churn depends on tenure, contract and charges."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, n)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], n, p=[0.55, 0.25, 0.2])
    charges = rng.uniform(20, 110, n).round(2)
    logit = -0.5 - 0.05 * tenure + 1.5 * (contract == "Month-to-month") + 0.02 * (charges - 60)
    churn = rng.random(n) < 1 / (1 + np.exp(-logit))
    return pd.DataFrame(
        {
            "customerID": [f"C{i:05d}" for i in range(n)],
            "tenure": tenure,
            "Contract": contract,
            "Monthly Charges": charges,
            "Churn": np.where(churn, "Yes", "No"),
        }
    )


@pytest.fixture(scope="module")
def table_service(tmp_path_factory, use_mlflow_dir):
    from mlflow import MlflowClient
    from ppx import tracking
    from ppx.models.churn.train import TABLE_CONFIG, TABLE_MODEL_TAG, train_table
    from ppx.serve import launch

    root = tmp_path_factory.mktemp("table_serving")
    path = root / "acme.csv"
    table = _customers()
    table.to_csv(path, index=False)
    with use_mlflow_dir(str(root / "mlflow")):
        tracking.configure()
        report = train_table(
            path, "Churn", name="acme", config=TABLE_CONFIG.replace(max_epochs=4, seed=0)
        )
        assert report["registered_model"] == "ppx-churn-acme"
        client = MlflowClient()
        assert (
            client.get_registered_model("ppx-churn-acme").tags[TABLE_MODEL_TAG[0]]
            == (TABLE_MODEL_TAG[1])
        )
        tracking.set_alias("ppx-churn-acme", tracking.CHAMPION, report["version"])
        # a second table model, registered but never given the serving alias
        mv = client.get_model_version("ppx-churn-acme", str(report["version"]))
        client.create_registered_model("ppx-churn-unaliased", tags=dict([TABLE_MODEL_TAG]))
        client.create_model_version("ppx-churn-unaliased", mv.source, run_id=mv.run_id)
    env = {
        **os.environ,
        "PPX_MLFLOW_DIR": str(root / "mlflow"),
        "PPX_MODEL_ALIAS": "champion",
        "PPX_TABLE_MODELS": "auto",
        "BENTOML_DO_NOT_TRACK": "True",
    }
    env.pop("PPX_API_TOKEN", None)
    env.pop("MLFLOW_TRACKING_URI", None)  # the store is PPX_MLFLOW_DIR
    port = launch.free_port()
    server = launch._spawn(
        launch.service_command("127.0.0.1", port), env, f"http://127.0.0.1:{port}", "table"
    )
    try:
        launch.wait_until(server, "/readyz", timeout=300.0)
        yield server.url, table, root / "mlflow", server.log_path.read_text(errors="replace")
    finally:
        server.stop()


def _request(row: pd.Series) -> dict:
    return {
        "customerID": row["customerID"],
        "tenure": int(row["tenure"]),
        "Contract": row["Contract"],
        "Monthly Charges": float(row["Monthly Charges"]),
    }


def _schema(doc: dict, node: dict) -> dict:
    while "$ref" in node:
        node = doc["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def test_docs_list_the_table_route_with_its_columns(table_service):
    url, _, _, log = table_service
    doc = httpx.get(url + "/docs.json").json()
    assert "/churn/table/acme" in doc["paths"]
    assert "/churn/table/unaliased" not in doc["paths"]
    assert "ppx-churn-unaliased has no version with alias 'champion'" in log
    body = doc["paths"]["/churn/table/acme"]["post"]["requestBody"]["content"]
    one = _schema(doc, body["application/json"]["schema"]["oneOf"][0])
    props = one["properties"]
    assert {"customerID", "tenure", "Contract", "Monthly Charges", "explain"} <= set(props)
    assert "Churn" not in props  # the target is no input
    assert {"type": "integer"} in props["tenure"]["anyOf"]
    assert {"type": "number"} in props["Monthly Charges"]["anyOf"]
    assert "Month-to-month" in props["Contract"]["description"]


def test_a_customer_scores_as_the_registered_pyfunc_does(table_service, monkeypatch):
    import mlflow.pyfunc

    from ppx import tracking

    url, table, mlflow_dir, _ = table_service
    rows = [_request(table.iloc[i]) for i in range(3)]
    r = httpx.post(url + "/churn/table/acme", json=rows[0])
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["id"] == "C00000"
    assert (got["model"], got["version"], got["alias"]) == ("ppx-churn-acme", "1", "champion")
    batch = httpx.post(url + "/churn/table/acme", json=rows).json()
    assert [b["id"] for b in batch] == ["C00000", "C00001", "C00002"]

    monkeypatch.setenv("PPX_MLFLOW_DIR", str(mlflow_dir))
    get_settings.cache_clear()
    try:
        tracking.configure()
        pyfunc = mlflow.pyfunc.load_model("models:/ppx-churn-acme@champion")
        expected = pyfunc.predict(pd.DataFrame(rows))["p_churn"].to_numpy()
    finally:
        get_settings.cache_clear()
    assert got["p_churn"] == pytest.approx(expected[0], rel=1e-6)
    assert [b["p_churn"] for b in batch] == pytest.approx(list(expected), rel=1e-5)
    # the model learned the table's signal: a new month-to-month customer churns more
    fresh = {"tenure": 1, "Contract": "Month-to-month", "Monthly Charges": 100.0}
    loyal = {"tenure": 70, "Contract": "Two year", "Monthly Charges": 25.0}
    p = [httpx.post(url + "/churn/table/acme", json=x).json()["p_churn"] for x in (fresh, loyal)]
    assert p[0] > p[1]


def test_explain_returns_reasons_naming_the_tables_columns(table_service):
    url, table, *_ = table_service
    r = httpx.post(url + "/churn/table/acme", json={**_request(table.iloc[5]), "explain": True})
    assert r.status_code == 200, r.text
    reasons = r.json()["reasons"]
    assert len(reasons) == 3
    by_column = {x["feature"]: x for x in reasons}
    assert set(by_column) == {"tenure", "Contract", "Monthly Charges"}
    # a category is told by its name, as in the table, never by its code
    contract = by_column["Contract"]
    assert contract["value"] == table.iloc[5]["Contract"], contract
    assert f"contract: {contract['value']}" in contract["text"] and "churn risk" in contract["text"]
    # a blank numeric cell is explained as the training median, not left unexplained
    r = httpx.post(url + "/churn/table/acme", json={"Contract": "One year", "explain": True})
    assert r.status_code == 200 and len(r.json()["reasons"]) == 3


@pytest.mark.parametrize(
    ("change", "column"),
    [
        ({"tenure": "three"}, "tenure"),
        ({"Monthly Charges": "a lot"}, "Monthly Charges"),
        ({"Contract": 5}, "Contract"),
        ({"Churn": "Yes"}, "Churn"),
    ],
)
def test_a_bad_value_is_refused_naming_the_column(table_service, change, column):
    url, table, *_ = table_service
    r = httpx.post(url + "/churn/table/acme", json={**_request(table.iloc[0]), **change})
    assert r.status_code in (400, 422), r.text
    assert [column] in [d["loc"] for d in r.json()["detail"]]


def test_guards_apply_to_table_routes(table_service):
    url, *_ = table_service
    route = url + "/churn/table/acme"
    assert httpx.get(route).status_code == 405
    assert (
        httpx.post(route, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    )
    # the world models have no version in this registry: their routes answer 503
    assert httpx.post(url + "/churn/score", json={"customer_id": 1}).status_code == 503


def test_table_models_setting():
    assert wanted("auto") is None and wanted("") is None
    assert wanted("none") == []
    assert wanted("acme, ppx-acme-churn") == ["ppx-churn-acme", "ppx-acme-churn"]
    assert short_name("ppx-churn-acme") == "acme" and short_name("ppx-acme-churn") == "acme-churn"


def test_the_table_model_warms_up_without_a_warning(table_service):
    # its own logged example (a row of its table) validates against the generated
    # request model and scores; a failure would be a warning naming the model
    assert "warm-up of ppx-churn-acme" not in table_service[3]
