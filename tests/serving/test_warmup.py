"""The model service warms each model up with its own logged input example (a brand's
store knows none of the demo world's customers); the documented example only when the
model logged none; a failed warm-up is a warning naming the model; one start-up line
per model shows at the service's default log level. No trained model needed: small
pyfuncs saved with MLflow record what they were asked."""

from __future__ import annotations

import logging
import re

import mlflow.pyfunc
import pandas as pd
import pytest

from ppx.config import PROJECT_ROOT


class Recorder(mlflow.pyfunc.PythonModel):
    """Remembers every frame it scores; ``fail`` makes it refuse every one."""

    fail = False

    def predict(self, context, model_input, params=None):
        self.seen = [*getattr(self, "seen", []), model_input]
        if self.fail:
            raise ValueError("this model refuses everything")
        return pd.DataFrame({"x": range(len(model_input))})


@pytest.fixture()
def M(monkeypatch):  # noqa: N802 - the module under test
    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # serving/ sits beside the package
    from serving import model_service

    # the store freezes what is alive after warming up: not the test process
    monkeypatch.setattr(model_service.gc, "freeze", lambda: None)
    return model_service


def _loaded(M, tmp_path, name, example=None, fail=False):  # noqa: N803
    path = tmp_path / name
    mlflow.pyfunc.save_model(str(path), python_model=Recorder(), input_example=example)
    pyfunc = mlflow.pyfunc.load_model(str(path))
    recorder = pyfunc.unwrap_python_model()
    recorder.seen, recorder.fail = [], fail  # forget what saving the example scored
    return M.LoadedModel(name, f"ppx-{name}", "3", "champion", pyfunc, recorder), recorder


def _warm(M, model, endpoint_name, monkeypatch):  # noqa: N803
    """Warm a store holding only ``model`` and serving only ``endpoint_name`` up."""
    endpoint = M.build_endpoints()[endpoint_name]
    monkeypatch.setattr(M, "ENDPOINTS", {endpoint_name: endpoint})
    store = M.ModelStore(alias="champion", models=(model.name,))
    store.loaded[model.name] = model
    store._settle()
    return [row for frame in model.python_model.seen for row in frame.to_dict("records")]


def test_a_model_is_warmed_with_its_own_logged_example(M, tmp_path, monkeypatch):  # noqa: N803
    documented = M.ENDPOINTS["churn_score"].example
    own = {"customer_id": 7, "as_of": "2026-03-01"}
    assert own["customer_id"] != documented["customer_id"]
    model, _ = _loaded(M, tmp_path, "churn", pd.DataFrame([own]))
    (row,) = _warm(M, model, "churn_score", monkeypatch)
    assert row["customer_id"] == 7
    assert str(row["as_of"]).startswith("2026-03-01")


def test_each_fraud_route_is_warmed_with_its_own_row_of_the_logged_example(
    M, tmp_path, monkeypatch
):  # noqa: N803
    # as fraud's train logs it: one return and one claim in one frame, every column of both
    example = pd.DataFrame(
        [
            {"kind": "return", "customer_id": 121, "requested_at": "2024-10-07T03:12:18",
             "amount": 372.97, "product_id": 111.0, "reason": "damaged", "claim_type": None,
             "signature": False, "gps_distance_m": float("nan")},
            {"kind": "claim", "customer_id": 748, "requested_at": "2024-10-08T03:23:38",
             "amount": 17.68, "product_id": float("nan"), "reason": None,
             "claim_type": "item_not_received", "signature": False, "gps_distance_m": 8.0},
        ]
    )  # fmt: skip
    model, recorder = _loaded(M, tmp_path, "fraud", example)
    (ret,) = _warm(M, model, "fraud_return", monkeypatch)
    assert (ret["kind"], ret["customer_id"], ret["product_id"]) == ("return", 121, 111)
    recorder.seen = []
    (claim,) = _warm(M, model, "fraud_claim", monkeypatch)
    assert (claim["kind"], claim["customer_id"], claim["gps_distance_m"]) == ("claim", 748, 8.0)


def test_a_model_without_a_logged_example_is_warmed_with_the_documented_one(
    M, tmp_path, monkeypatch
):  # noqa: N803
    model, _ = _loaded(M, tmp_path, "churn", example=None)
    (row,) = _warm(M, model, "churn_score", monkeypatch)
    assert row["customer_id"] == M.ENDPOINTS["churn_score"].example["customer_id"]


def test_a_failed_warm_up_is_a_warning_naming_the_model(M, tmp_path, caplog, monkeypatch):  # noqa: N803
    model, _ = _loaded(M, tmp_path, "churn", pd.DataFrame([{"customer_id": 7}]), fail=True)
    with caplog.at_level(logging.INFO, logger="ppx.serving"):
        _warm(M, model, "churn_score", monkeypatch)  # no exception
    (record,) = [r for r in caplog.records if r.name == "ppx.serving" and "warm-up" in r.msg]
    assert record.levelno == logging.WARNING
    assert "ppx-churn v3" in record.getMessage()
    assert "its logged input example" in record.getMessage()
    assert "refuses everything" in record.getMessage()
    (ready,) = [r for r in caplog.records if r.getMessage().startswith("ready: ppx-churn")]
    assert "warm-up failed on /churn/score (see the warning)" in ready.getMessage()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture()
def server_logging(M):  # noqa: N803
    """Logging as BentoML's server sets it up: the root logger at WARNING with the one
    handler every record ends up in (``bentoml._internal.log.SERVER_LOGGING_CONFIG``)."""
    root, handler = logging.getLogger(), Collect()
    level = root.level
    root.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        M.startup_log.setLevel(logging.NOTSET)


def test_the_start_up_summary_shows_at_the_default_level(M, tmp_path, monkeypatch, server_logging):  # noqa: N803
    M.show_startup_log()  # what the service does when it starts
    model, _ = _loaded(M, tmp_path, "churn", pd.DataFrame([{"customer_id": 7}]))
    model.loaded_in_s = 1.25
    _warm(M, model, "churn_score", monkeypatch)
    (line,) = [x for x in server_logging.lines if "ppx-churn" in x]
    assert line.startswith("ready: ppx-churn v3 @champion, loaded in 1.2 s, warmed up in ")
    assert re.search(r"warmed up in \d+ ms on /churn/score \(its logged input example\)$", line)
    # request-time logging is as quiet as before: INFO on the service's logger stays hidden
    M.log.info("scored a request")
    assert "scored a request" not in server_logging.lines
