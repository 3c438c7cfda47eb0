"""Acceptance: the report of every registered model, and its API reasons, read as plain
language — labels instead of input names, original values, directions that agree."""

from __future__ import annotations

import html
from pathlib import Path

import pytest
from story_checks import (
    category_values,
    check_directions,
    check_originals,
    check_reasons,
    check_texts,
    visible_texts,
)

from ppx.models import registry


@pytest.fixture(scope="module")
def trained(tiny_world, tmp_path_factory, use_mlflow_dir):
    """Every tabular model trained with its tiny config and made champion (a text model
    has no SHAP report: ``ModelSpec.tabular``)."""
    from ppx import tracking
    from ppx.data.io import save_world
    from ppx.data.world import WorldParams, generate_world

    with use_mlflow_dir(str(tmp_path_factory.mktemp("explain_mlflow"))):
        tracking.configure()
        worlds = {None: tiny_world[1]}
        out = {}
        for spec in map(registry.get, registry.explainable()):
            months = spec.test_world_months
            if months not in worlds:
                path = Path(tmp_path_factory.getbasetemp()) / "worlds" / f"explain{months}"
                params = WorldParams(n_customers=600, seed=11, months=months)
                worlds[months] = save_world(generate_world(params), path)
            result = spec.run_train(worlds[months], cfg=spec.tiny_config(), progress=False)
            tracking.set_alias(spec.name, tracking.CHAMPION, result.version)
            out[spec.name] = worlds[months]
        yield out


@pytest.mark.slow
@pytest.mark.parametrize("name", registry.explainable())
def test_every_report_and_its_reasons_read_as_plain_language(name, trained, tmp_path):
    from ppx.explain.reason_codes import reason_codes
    from ppx.explain.report import ReportInfo, describe_run, write_report
    from ppx.explain.sources import load_explainable, world_rows
    from ppx.explain.story import importance_rows

    spec = registry.get(name)
    loaded = load_explainable(name)
    model = loaded.model
    d = spec.feature_dictionary()
    assert d is not None and d.missing(model.feature_names) == [], (
        f"{name}: inputs without a label: {d.missing(model.feature_names)}"
    )
    raw, X, source = world_rows(name, model, trained[name], n=60, seed=0)
    info = ReportInfo(name, f"ppx-{name}", loaded.version, loaded.run_id, data_source=source)
    describe_run(info, name, loaded.run_id)
    report = write_report(model, X, info, out_dir=tmp_path, max_rows=60)
    page = report.path.read_text()
    fr = report.fields
    assert (
        fr.units.target and html.escape(fr.units.target) in page
    )  # the horizon or target is stated
    assert info.quality and "Holdout quality" in page
    check_originals(fr, name)
    texts = visible_texts(page)
    check_texts(texts, list(model.feature_names), f"{name} report", category_values(fr))
    check_directions(fr, report.summary, importance_rows(fr), f"{name} report")
    assert raw is not None, f"{name}: the report explained no real requests ({source})"
    check_reasons(reason_codes(model, raw.iloc[:20], model_name=name), fr, f"{name} API")
