"""The model registry: every layer iterates it, and a fifth model is one registry entry.

The acceptance test registers the toy model of ``toy_model.py`` (a scikit-learn model
with its own schemas, endpoint, explain candidates and CLI commands) and finds it in
``ppx --help``, in MLflow after training, in ``ppx explain`` and as an endpoint of a
running model service with its OpenAPI schema; nothing else is edited.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from ppx.models import registry
from ppx.models.spec import TrainResult

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # toy_model is importable as a top-level module (and in a
# service process started with PYTHONPATH=HERE)

import toy_model  # noqa: E402


def test_registry_lists_the_four_models_in_order():
    assert registry.names()[:4] == ["delivery", "churn", "fraud", "recs"]
    routes = [e.route for spec in registry.specs() for e in spec.endpoints]
    assert routes[:5] == [
        "/delivery/estimate",
        "/churn/score",
        "/fraud/return",
        "/fraud/claim",
        "/recs/recommend",
    ]
    assert [s.maximize for s in registry.specs()][:4] == [False, True, True, True]
    for spec in registry.specs():
        for endpoint in spec.endpoints:
            examples = endpoint.request.model_config["json_schema_extra"]["examples"]
            assert examples[0] == endpoint.example, endpoint.name  # defined once, reused


def test_feedback_is_a_registered_text_model_with_its_own_explanation():
    spec = registry.get("feedback")
    assert registry.names()[4] == "feedback"
    assert [e.route for e in spec.endpoints] == ["/feedback/tag"]
    assert not spec.tabular and "feedback" not in registry.explainable()
    assert registry.explainable() == ["delivery", "churn", "fraud", "recs"]
    from ppx.models.spec import ModelSpec

    fields = {f: getattr(spec, f) for f in spec.__dataclass_fields__}
    with pytest.raises(ValueError, match="explain_note"):
        ModelSpec(**{**fields, "explain_note": ""})


def test_explain_refuses_a_text_model_with_its_reason():
    from ppx.cli import build_app

    res = CliRunner().invoke(build_app(), ["explain", "feedback", "--world", "nowhere"])
    assert res.exit_code != 0
    assert "feedback has no SHAP report" in res.output and "occlusion" in res.output


def test_a_model_that_does_not_import_is_an_error(monkeypatch):
    monkeypatch.setitem(registry.MODELS, "ghost", "ppx.models.ghost")
    with pytest.raises(registry.ModelImportError, match="ghost"):
        registry.specs()
    with pytest.raises(KeyError, match="unknown model 'nope'"):
        registry.get("nope")


def test_extra_models_come_from_the_setting(monkeypatch):
    from ppx.config import get_settings

    monkeypatch.setenv("PPX_EXTRA_MODELS", "toy_model:SPEC")
    get_settings.cache_clear()
    try:
        assert registry.names()[-1] == "toy"
        assert registry.get("toy") is toy_model.SPEC
    finally:
        registry.unregister("toy")
        get_settings.cache_clear()


def test_a_fifth_model_is_one_registry_entry(tiny_world, mlflow_tmp, tmp_path):
    import mlflow
    from ppx import tracking
    from ppx.cli import build_app
    from ppx.serve import launch

    _, world = tiny_world
    runner = CliRunner()
    with registry.registered(toy_model.SPEC):
        app = build_app()
        # ppx --help: the model's train / evaluate commands, and ppx explain
        for group in ("train", "evaluate"):
            res = runner.invoke(app, [group, "--help"])
            assert res.exit_code == 0 and "toy" in res.output, res.output
        assert "toy" in runner.invoke(app, ["explain", "--help"]).output
        # ppx tune is one command for every model with a tuning adapter; the toy has none
        res = runner.invoke(app, ["tune", "toy", "--world", str(world)])
        assert res.exit_code == 2 and "model 'toy' has no tuning" in " ".join(res.output.split())

        # training through the CLI: experiment ppx-toy, a registered version, the gate
        res = runner.invoke(app, ["train", "toy", "--world", str(world)])
        assert res.exit_code == 0, res.output
        names = [e.name for e in mlflow.search_experiments()]
        assert "ppx-toy" in names
        result = toy_model.SPEC.run_train(world)
        assert isinstance(result, TrainResult) and result.version == "2"
        assert "same holdout" in result.reason  # the gate compared it with v1, the champion
        assert tracking.get_alias_version("toy") is not None

        # ppx explain toy writes its SHAP report
        out = tmp_path / "reports"
        res = runner.invoke(
            app, ["explain", "toy", "--world", str(world), "--rows", "30", "--out", str(out)]
        )
        assert res.exit_code == 0, res.output
        assert (out / "toy_shap.html").exists()

    # the model service, started with the toy as an extra model, serves and documents it
    env = {
        **os.environ,
        "PPX_EXTRA_MODELS": "toy_model:SPEC",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])),
        "BENTOML_DO_NOT_TRACK": "True",
        "PPX_MODEL_ALIAS": "champion",
    }
    env.pop("PPX_API_TOKEN", None)
    port = launch.free_port()
    server = launch._spawn(
        launch.service_command("127.0.0.1", port), env, f"http://127.0.0.1:{port}", "toy"
    )
    try:
        launch.wait_until(server, "/readyz", timeout=300)
        doc = httpx.get(server.url + "/docs.json").json()
        post = doc["paths"]["/toy/score"]["post"]
        request = post["requestBody"]["content"]["application/json"]["schema"]
        assert {"$ref": "#/components/schemas/ToyRequest"} in request["oneOf"]
        assert "order_value" in doc["components"]["schemas"]["ToyRequest"]["properties"]
        answer = httpx.post(server.url + "/toy/score", json=toy_model.EXAMPLE, timeout=60)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["model"] == "ppx-toy" and 0 <= body["p_high_value"] <= 1
        # the four listed models have no version in this store: their endpoints say so
        missing = httpx.post(server.url + "/churn/score", json={"customer_id": 1}, timeout=60)
        assert missing.status_code == 503
    finally:
        server.stop()
