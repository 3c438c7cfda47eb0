"""A brand's own data, end to end, with no ground truth anywhere.

Tiny exports are written by the test (an Olist-layout folder, a platform orders export
with carrier scans), imported with ``ppx data import``, then every model the data
supports (delivery and recs: these exports have no subscriptions, returns or claims)
goes through ``ppx train`` -> ``ppx score`` -> ``ppx explain``, and ``ppx simulate``
replays the store on the registered models' scores. A store made from a world's
observable tables (no truth/) covers churn and fraud the same way.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from ppx.cli import app
from ppx.data import columns as C

from .data.store_exports import write_olist, write_shopify

runner = CliRunner()
TRAIN_ARGS = {
    "delivery": ["--epochs", "2"],
    "recs": ["--epochs", "1", "--max-minutes", "0.5", "--threads", "1"],
    "churn": [],
    "fraud": [],
}


def _ok(args: list[str]) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 0, f"ppx {' '.join(args)} failed:\n{res.output}\n{res.exception!r}"
    return " ".join(res.output.split())


def _make_champion(model: str) -> None:
    """The few epochs here need not beat the baselines (the gate is tested on its own);
    the version just trained is made champion so the commands after it run on it."""
    from mlflow import MlflowClient
    from ppx import tracking

    tracking.configure()
    versions = MlflowClient().search_model_versions(f"name='{tracking.registered_name(model)}'")
    tracking.set_alias(model, tracking.CHAMPION, max(int(v.version) for v in versions))


def _run_store(store: Path, models: list[str], tmp_path: Path) -> None:
    assert not any(p.name == "truth" for p in store.rglob("*")), "a store has no truth/"
    tables = {p.stem: pd.read_parquet(p) for p in (store / "tables").glob("*.parquet")}
    for model in models:
        _ok(["train", model, "--world", str(store), *TRAIN_ARGS[model]])
        _make_champion(model)
        out = tmp_path / f"{model}.parquet"
        _ok(["score", model, "--store", str(store), "--out", str(out)])
        scores = pd.read_parquet(out)
        assert len(scores) > 0
        assert scores["model_version"].str.fullmatch(rf"ppx-{model} v\d+").all()
        has_reason = scores["reason_1"].str.len() > 0
        if model == "churn" and scores["probability"].nunique() == 1:
            # a tiny store can leave churn's gate with its fully regularised member: one
            # risk for everyone, and then no feature is named as a reason
            assert not has_reason.any(), "a constant score names no reasons"
        else:
            assert has_reason.mean() > 0.5, "reasons in plain words"
        if model == "delivery":
            s = tables[C.SHIPMENTS]
            assert len(scores) == (s[C.STATUS] == "in_transit").sum()  # every open order
            assert scores["probability"].between(0, 1).all()
            assert {C.ORDER_ID, C.PROMISED_DATE, "model_promise_date"} <= set(scores.columns)
        elif model == "recs":
            assert len(scores) == tables[C.ORDERS][C.CUSTOMER_ID].nunique()
            assert scores["product_ids"].str.split().str.len().ge(1).all()
        else:
            assert scores["probability"].between(0, 1).all()
        reports = tmp_path / "reports"
        _ok(["explain", model, "--world", str(store), "--rows", "20", "--out", str(reports)])
        assert list(reports.glob(f"{model}*.html")), f"no {model} report"
    text = _ok(["simulate", "--world", str(store), "--policy", "src/rules/policy/default.yaml"])
    assert "no ground truth" in text and "registered models' scores" in text


@pytest.mark.slow
def test_olist_layout_store_end_to_end(tmp_path, mlflow_tmp, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])  # the policy path is relative
    exports = write_olist(tmp_path / "olist", n_orders=500, n_people=90)
    store = tmp_path / "store"
    _ok(["data", "import", str(exports), "--out", str(store)])
    _run_store(store, ["delivery", "recs"], tmp_path)


@pytest.mark.slow
def test_platform_export_store_end_to_end(tmp_path, mlflow_tmp, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    orders, tracking = write_shopify(tmp_path / "shop", n_orders=500, n_customers=90)
    store = tmp_path / "store"
    _ok(["data", "import", str(orders), "--tracking", str(tracking), "--out", str(store)])
    _run_store(store, ["delivery", "recs"], tmp_path)


@pytest.mark.slow
def test_canonical_store_supports_every_model(tiny_world, tmp_path, mlflow_tmp, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[1])
    _, world = tiny_world
    store = tmp_path / "store"
    _ok(["data", "import", str(world / "tables"), "--out", str(store)])
    _run_store(store, ["delivery", "churn", "fraud", "recs"], tmp_path)
