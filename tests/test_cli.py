"""The ``ppx`` command line on tiny data: world, validate, load and bench world."""

from __future__ import annotations

import json
import shutil

import pytest
import typer
from typer.testing import CliRunner

from ppx.cli import app, data_app
from ppx.data import columns as C
from ppx.data.adapters import datasets_dir
from ppx.data.adapters.registry import ADAPTERS, register

runner = CliRunner()


def _flat(text: str) -> str:
    """Rich wraps long lines at the terminal width; compare on collapsed whitespace."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def made_world(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "w"
    result = runner.invoke(
        app,
        ["data", "world", "--customers", "300", "--seed", "3", "--months", "4", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    return out, result


def test_data_world_writes_tables_truth_and_manifest(made_world):
    out, result = made_world
    assert "wrote" in result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 3
    assert manifest["params"]["n_customers"] == 300
    assert manifest["params"]["months"] == 4
    assert sorted(p.stem for p in (out / "tables").glob("*.parquet")) == sorted(C.TABLES)
    assert (out / "truth" / f"{C.TRUTH_SHIPMENTS}.parquet").exists()


def test_data_validate_accepts_a_fresh_world(made_world):
    out, _ = made_world
    result = runner.invoke(app, ["data", "validate", str(out)])
    assert result.exit_code == 0, result.output
    assert "valid tables" in result.output
    assert "orders" in result.output


def test_data_validate_rejects_a_broken_folder(tiny_world, tmp_path):
    """Exit non-zero with the schema's message, naming table, column and rows."""
    import pandas as pd

    _, path = tiny_world
    broken = tmp_path / "broken"
    shutil.copytree(path / "tables", broken)
    orders = pd.read_parquet(broken / "orders.parquet")
    orders.loc[[2, 8], C.CUSTOMER_ID] = 123_456_789
    orders.to_parquet(broken / "orders.parquet", index=False)
    result = runner.invoke(app, ["data", "validate", str(broken)])
    assert result.exit_code != 0
    out = _flat(result.output)
    assert "error:" in out
    assert "table orders, column customer_id" in out
    assert "rows [2, 8]" in out
    assert "Traceback" not in result.output


def test_data_validate_explains_a_missing_folder(tmp_path):
    result = runner.invoke(app, ["data", "validate", str(tmp_path / "nowhere")])
    assert result.exit_code != 0
    assert "not a folder of canonical tables" in _flat(result.output)


def test_data_world_rejects_bad_options(tmp_path):
    result = runner.invoke(app, ["data", "world", "--customers", "5", "--out", str(tmp_path)])
    assert result.exit_code != 0


def test_bench_world_writes_the_benchmark_contract(tmp_path):
    out = tmp_path / "world.json"
    result = runner.invoke(app, ["bench", "world", "--customers", "200", "--json", str(out)])
    assert result.exit_code == 0, result.output
    payload = json.loads(out.read_text())
    assert set(payload["meta"]) >= {"command", "seconds", "machine"}
    figures = payload["world_200"]["ppx"]
    assert figures["customers"] == 200
    assert figures["rows"] > figures["orders"] > 0
    assert figures["rows_per_s"] > 0
    assert figures["peak_mb"] > 0


# --- ppx data load (the registry) --------------------------------------------------------


@pytest.fixture(scope="module")
def load_app():
    """``ppx data`` with ``load`` registered (independent of the wiring in ppx.cli)."""
    if any(c.name == "load" for c in data_app.registered_commands):
        return data_app
    local = typer.Typer()

    @local.callback()
    def _group() -> None:
        """A group, so ``load`` stays a sub-command."""

    register(local)
    return local


def test_load_lists_every_adapter(load_app):
    result = runner.invoke(load_app, ["load", "--help"])
    assert result.exit_code == 0
    for name in ADAPTERS:
        assert name in result.output


def test_load_unknown_dataset_fails(load_app):
    result = runner.invoke(load_app, ["load", "imdb"])
    assert result.exit_code != 0


def test_load_reports_rows_from_a_given_path(load_app, tmp_path):
    """A user's own copy of the Telco file, passed with --path."""
    header = "customerID,gender,SeniorCitizen,tenure,MonthlyCharges,TotalCharges,Churn\n"
    rows = "0001-A,Female,0,1,29.85,29.85,No\n0002-B,Male,1,0,53.85, ,Yes\n"
    (tmp_path / "telco.csv").write_text(header + rows)
    parts = tmp_path / "parts"
    result = runner.invoke(
        load_app,
        ["load", "telco", "--path", str(tmp_path / "telco.csv"), "--out", str(parts)],
    )
    assert result.exit_code == 0, result.output
    assert "telco" in result.output
    assert (parts / "telco.parquet").exists()


def test_load_missing_path_is_a_clear_error(load_app, tmp_path):
    result = runner.invoke(load_app, ["load", "telco", "--path", str(tmp_path / "nope.csv")])
    assert result.exit_code != 0
    assert "not found" in _flat(result.output)
    assert "Traceback" not in result.output


@pytest.mark.parametrize("name", list(ADAPTERS))
def test_load_public_dataset(load_app, name):
    folder = datasets_dir() / ADAPTERS[name].dataset
    if not folder.exists():
        pytest.skip(f"public dataset {ADAPTERS[name].dataset} not found under {datasets_dir()}")
    result = runner.invoke(load_app, ["load", name])
    assert result.exit_code == 0, result.output
    assert "rows" in result.output


def test_monitor_covers_every_model_and_names_a_missing_world(tmp_path):
    result = runner.invoke(app, ["monitor", "--help"])
    assert result.exit_code == 0
    for name in ("delivery", "churn", "fraud", "recs"):
        assert name in result.output
    missing = tmp_path / "no_world"
    result = runner.invoke(app, ["monitor", "churn", "--world", str(missing)])
    assert result.exit_code != 0
    said = " ".join(result.output.split())  # the terminal wraps long lines
    assert "no_world does not exist" in said
