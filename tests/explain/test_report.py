"""The HTML report: self-contained, opens with computed sentences, has every plot; and
``ppx explain`` / ``build_report`` load the registered model, write it and log it."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner


def test_report_is_self_contained_with_all_plots(toy_report):
    text = toy_report.path.read_text()
    imgs = re.findall(r'<img[^>]+src="([^"]+)"', text)
    # importance + beeswarm + 3 dependence + 3 waterfalls
    assert len(imgs) == 8
    assert all(src.startswith("data:image/png;base64,") for src in imgs)
    assert not re.search(r'(src|href)="(https?:)?//', text), "nothing may be fetched"
    assert "<script" not in text
    assert text.index("In plain language") < text.index("<img")


def test_report_summary_is_the_computed_one(toy_report):
    text = toy_report.path.read_text()
    assert len(toy_report.summary) >= 3
    for sentence in toy_report.summary:
        assert sentence.replace("'", "&#x27;") in text
    numbers = json.loads(toy_report.path.with_suffix(".json").read_text())
    assert numbers["rows"] == 120
    assert numbers["additivity_error"] < 1e-4
    top = next(iter(numbers["importance"]))
    assert top.replace("_", " ") in toy_report.summary[1]


@pytest.fixture()
def registered_toy(mlflow_tmp, toy_model, tiny_world):
    from explain_toy import ToyPyfunc

    from ppx import tracking

    _, path = tiny_world
    with tracking.start_run("churn", run_name="toy", world_path=path) as run:
        mv = tracking.log_pyfunc_model("churn", ToyPyfunc(toy_model))
    tracking.set_alias("churn", "champion", mv.version)
    return run.info.run_id


def test_build_report_loads_the_champion_and_logs_the_report(registered_toy, tmp_path):
    from mlflow import MlflowClient
    from ppx.explain.report import build_report

    path = build_report("churn", max_rows=40, out_dir=tmp_path, progress=False)
    assert path == tmp_path / "churn_shap.html"
    text = path.read_text()
    assert registered_toy in text and "ppx-churn v1" in text
    assert "explain_requests" in text  # the rows came from the world, through the model
    logged = [a.path for a in MlflowClient().list_artifacts(registered_toy, "explanations")]
    assert "explanations/churn_shap.html" in logged


def test_cli_explains_a_run_and_rejects_bad_input(registered_toy, tmp_path):
    from ppx.cli import app

    runner = CliRunner()
    res = runner.invoke(
        app, ["explain", "churn", "--run", registered_toy, "--rows", "30", "--out", str(tmp_path)]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "churn_shap.html").exists()
    res = runner.invoke(app, ["explain", "shipping"])
    assert res.exit_code == 2 and "unknown model" in res.output
    res = runner.invoke(app, ["explain", "fraud"])
    assert res.exit_code == 2 and "no version with alias" in res.output


def test_bench_times_reports_and_reason_codes_of_champions(registered_toy, tiny_world):
    from ppx.explain.bench import run

    payload = run(tiny_world[1], ["churn", "fraud"], rows=30)
    figures = payload[tiny_world[1].name]
    assert list(figures) == ["churn"]  # fraud has no champion in this store: skipped
    assert figures["churn"]["rows"] == 30
    assert 0 <= figures["churn"]["shap_seed_top1_agreement"] <= 1
    assert 0 < figures["churn"]["reason_ms_p50"] <= figures["churn"]["reason_ms_p99"]
    assert 0 < figures["churn"]["reason_cpu_ms_p50"] <= figures["churn"]["reason_cpu_ms_p99"]
    assert payload["meta"]["reports_seconds_total"] > 0
    assert len(payload["meta"]["load_average_before"]) == 3


def test_report_lists_the_scores_that_moved_since_the_previous_champion(
    mlflow_tmp, toy_model, tiny_world, tmp_path
):
    import copy

    from explain_toy import ToyPyfunc

    from mlflow import MlflowClient
    from ppx import tracking
    from ppx.explain.report import build_report

    _, path = tiny_world
    moved = copy.deepcopy(toy_model)
    moved.mu = moved.mu + moved.sd * 0.5  # every standardised input shifts: scores move
    for model in (toy_model, moved):
        with tracking.start_run("churn", run_name="toy", world_path=path):
            mv = tracking.log_pyfunc_model("churn", ToyPyfunc(model))
        tracking.set_alias("churn", "champion", mv.version)
    tags = MlflowClient().get_registered_model("ppx-churn").tags
    assert tags[tracking.PREVIOUS_CHAMPION_TAG] == "1"
    page = build_report(
        "churn", max_rows=40, out_dir=tmp_path, progress=False, log_to_mlflow=False
    ).read_text()
    section = re.search(r'<section id="changes">(.*?)</section>', page, re.S).group(1)
    assert "<th>version 1</th>" in section and "<th>version 2</th>" in section
    assert "points</td>" in section and "median absolute change" in page
