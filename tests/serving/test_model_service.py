"""The model service over HTTP: every endpoint, validation, 503s, auth, and a fuzz run."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pandas as pd
import pytest

from ppx.models import registry
from ppx.serve.routes import ROUTES, example_request

pytestmark = pytest.mark.serving

#: load name (endpoint or variant) -> the model behind it, from the registry
MODEL_OF = {
    load_name: spec.name
    for spec in registry.specs()
    for endpoint in spec.endpoints
    for load_name in endpoint.examples()
}
MODEL_ROUTES = sorted(set(ROUTES.values()))


def _example(services, endpoint: str) -> dict:
    services.need(MODEL_OF[endpoint])
    ex = example_request(endpoint)
    if endpoint == "churn_score":
        # the documented example's customer may not exist in the test world: use a
        # subscriber of the world the churn model was trained on
        ex = {"customer_id": services.registry.subscriber, "as_of": None}
        ex = {k: v for k, v in ex.items() if v is not None}
    return ex


def _same_answer(a: dict, b: dict) -> None:
    """Equal up to float32 noise (a batch and a single call run different matrix sizes)."""
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], float) and isinstance(b[k], float):
            assert a[k] == pytest.approx(b[k], rel=1e-4, abs=1e-6), k
        elif k != "scores":
            assert a[k] == b[k], k


def test_probes_metrics_and_openapi(services):
    for url in (services.open, services.guarded):
        assert httpx.get(url + "/livez").status_code == 200
        assert httpx.get(url + "/readyz").status_code == 200
    metrics = httpx.get(services.open + "/metrics").text
    assert "ppx_request_total" in metrics or "request_duration" in metrics
    doc = httpx.get(services.open + "/docs.json").json()
    for route in MODEL_ROUTES:
        body = doc["paths"][route]["post"]["requestBody"]["content"]["application/json"]
        assert "oneOf" in body["schema"], f"{route}: one request or a list"


@pytest.mark.parametrize("endpoint", list(ROUTES))
def test_every_endpoint_single_batch_and_explain(services, endpoint):
    ex = _example(services, endpoint)
    url = services.open + ROUTES[endpoint]
    registered = f"ppx-{MODEL_OF[endpoint]}"
    version = services.registry.trained[MODEL_OF[endpoint]]

    one = httpx.post(url, json=ex, timeout=60)
    assert one.status_code == 200, one.text
    body = one.json()
    assert isinstance(body, dict)
    assert (body["model"], body["version"], body["alias"]) == (registered, version, "champion")
    assert "reasons" not in body

    many = httpx.post(url, json=[ex, ex, ex], timeout=60)
    assert many.status_code == 200, many.text
    rows = many.json()
    assert isinstance(rows, list) and len(rows) == 3
    _same_answer(rows[0], body)

    explained = httpx.post(url, json={**ex, "explain": True}, timeout=60)
    assert explained.status_code == 200, explained.text
    reasons = explained.json().get("reasons")
    assert reasons, "explain=true returns reason codes"
    assert 1 <= len(reasons) <= 3
    assert {"feature", "contribution"} <= set(reasons[0])
    mags = [abs(r["contribution"]) for r in reasons]
    assert mags == sorted(mags, reverse=True)


def test_delivery_transit_differs_from_checkout(services):
    checkout = httpx.post(
        services.open + "/delivery/estimate", json=_example(services, "delivery_estimate")
    ).json()
    transit = httpx.post(
        services.open + "/delivery/estimate", json=_example(services, "delivery_transit")
    ).json()
    assert (checkout["stage"], transit["stage"]) == ("checkout", "transit")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"carrier": None}, "carrier"),
        ({"carrier": "x" * 65}, "carrier"),
        ({"weight_kg": -1}, "weight_kg"),
        ({"ordered_at": "not a time"}, "ordered_at"),
        ({"ordered_at": "1800-01-01T00:00:00"}, "ordered_at"),
        ({"n_scans": "three"}, "n_scans"),
        ({"promise_target": 1.5}, "promise_target"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_schema_violations_are_4xx_naming_the_field(services, change, field):
    ex = _example(services, "delivery_estimate")
    bad = {k: v for k, v in {**ex, **change}.items() if v is not None}
    r = httpx.post(services.open + "/delivery/estimate", json=bad)
    assert r.status_code == 400, r.text
    locs = [d["loc"] for d in r.json()["detail"]]
    assert [field] in locs, locs
    # in a batch the item's index comes first
    r = httpx.post(services.open + "/delivery/estimate", json=[ex, bad])
    assert r.status_code == 400
    assert [1, field] in [d["loc"] for d in r.json()["detail"]]


def test_body_shape_limits_and_content_type(services):
    url = services.open + "/delivery/estimate"
    ex = _example(services, "delivery_estimate")
    from serving.schemas import MAX_BATCH

    assert httpx.post(url, json=[]).status_code == 400
    too_many = httpx.post(url, json=[ex] * (MAX_BATCH + 1))
    assert too_many.status_code == 400 and "limit" in too_many.text
    assert httpx.post(url, json=42).status_code == 400
    bad_json = httpx.post(url, content=b"{nope", headers={"content-type": "application/json"})
    assert bad_json.status_code == 400 and "JSON" in bad_json.text
    assert httpx.post(url, content=b"x", headers={"content-type": "text/plain"}).status_code == 415
    assert httpx.get(url).status_code == 405


def test_model_side_input_error_is_422_naming_the_field(services):
    ex = {**_example(services, "delivery_estimate"), "warehouse": "wh_atlantis"}
    r = httpx.post(services.open + "/delivery/estimate", json=ex)
    assert r.status_code == 422, r.text
    assert "warehouse" in r.json()["error"]


def test_one_bad_item_does_not_fail_concurrent_good_ones(services):
    import concurrent.futures as cf

    url = services.open + "/delivery/estimate"
    good = _example(services, "delivery_estimate")
    bad = {**good, "carrier": "no_such_carrier"}
    bodies = [good, bad] * 8
    with cf.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(lambda b: httpx.post(url, json=b, timeout=60).status_code, bodies))
    assert codes == [200, 422] * 8


def test_start_up_says_which_models_serve_at_the_default_log_level(services):
    """BentoML's server logging hides INFO lines but the start-up summary's."""
    opened = services.logs["open"].read_text(errors="replace")
    for name, version in services.registry.trained.items():
        if not registry.get(name).endpoints:  # nothing for the model service to load
            continue
        line = f"ready: ppx-{name} v{version} @champion, loaded in "
        assert line in opened, f"{line!r} not in the service's output:\n{opened[-3000:]}"
    assert re.search(r"ready: ppx-delivery v\d+ @champion, .* warmed up in \d+ ms on ", opened)
    guarded = services.logs["guarded"].read_text(errors="replace")
    assert "ready: ppx-delivery v" in guarded and "ready: ppx-churn" not in guarded
    assert (
        "[WARNING]" in guarded and "model unavailable: ppx-churn@serving_only_delivery" in guarded
    )


def test_missing_model_gives_503_on_its_endpoint_only(services):
    headers = {"authorization": f"Bearer {services.token}"}
    ok = httpx.post(
        services.guarded + "/delivery/estimate",
        json=_example(services, "delivery_estimate"),
        headers=headers,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["alias"] == "serving_only_delivery"
    for route in ("/churn/score", "/fraud/return", "/fraud/claim", "/recs/recommend"):
        r = httpx.post(services.guarded + route, json={"customer_id": 1}, headers=headers)
        assert r.status_code == 503, (route, r.text)
        assert "serving_only_delivery" in r.json()["error"]


def test_auth_required_only_when_token_set(services):
    url = services.guarded + "/delivery/estimate"
    ex = _example(services, "delivery_estimate")
    assert httpx.post(url, json=ex).status_code == 401
    wrong = httpx.post(url, json=ex, headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    right = httpx.post(url, json=ex, headers={"authorization": f"Bearer {services.token}"})
    assert right.status_code == 200
    # probes and the OpenAPI document stay open
    assert httpx.get(services.guarded + "/readyz").status_code == 200
    assert httpx.get(services.guarded + "/docs.json").status_code == 200
    # the open service needs no token at all
    assert httpx.post(services.open + "/delivery/estimate", json=ex).status_code == 200


def test_served_contract_matches_its_openapi_document(services, tmp_path):
    """``st run /docs.json --checks all``: every answer matches the served document.

    Status codes, bodies, content types and headers as declared; schema-valid bodies
    accepted (or refused with the documented 422 by the model), schema-violating ones
    rejected, undeclared methods answered 405 with ``Allow``. Routes whose model is not
    trained here would answer 503 by design and are left out.
    """
    import subprocess
    import sys
    from pathlib import Path

    served = sorted({ROUTES[e] for e, m in MODEL_OF.items() if m in services.registry.trained})
    assert served, "no model trained: nothing to check"
    config = Path(__file__).with_name("schemathesis.toml")
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(config),
        "run",
        services.open + "/docs.json",
        "--checks",
        "all",
        "--workers",
        "1",
        "--max-examples",
        "10",
        "--generation-deterministic",
        "--no-color",
        "--report",
        "ndjson",
        "--report-dir",
        str(tmp_path),
    ]
    # the probes too (GET /livez ...): their documents are BentoML's and must hold as well
    for route in sorted(set(ROUTES.values()) - set(served)):
        cmd += ["--exclude-path", route]
    run = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    doc = httpx.get(services.open + "/docs.json").json()
    operations = sum(
        len(ops)
        for path, ops in doc["paths"].items()
        if path in served or path not in ROUTES.values()
    )
    assert f"Tested: {operations}" in run.stdout.split("API Operations:")[1], run.stdout[-3000:]


def test_load_generator_measures_from_a_separate_process(services):
    from ppx.serve.loadgen import measure

    res = measure(
        services.open + "/delivery/estimate",
        _example(services, "delivery_estimate"),
        clients=2,
        seconds=1.0,
        warmup=0.2,
    )
    assert res["rps"] > 0 and res["errors"] == 0
    assert res["p50_ms"] <= res["p95_ms"] <= res["p99_ms"]


@pytest.fixture()
def in_process(services, monkeypatch):
    """``serving.model_service`` reading the tests' registry, with a fresh model store."""
    from ppx.config import PROJECT_ROOT, get_settings

    monkeypatch.syspath_prepend(str(PROJECT_ROOT))  # serving/ sits beside the package
    monkeypatch.setenv("PPX_MLFLOW_DIR", str(services.registry.mlflow_dir))
    monkeypatch.setenv("PPX_MODEL_ALIAS", "champion")
    get_settings.cache_clear()
    from serving import model_service

    monkeypatch.setattr(model_service, "STORE", None)
    monkeypatch.setattr(model_service.gc, "freeze", lambda: None)  # not in the test process
    yield model_service
    get_settings.cache_clear()


def test_in_process_latency_scores_every_trained_endpoint(in_process):
    from ppx.serve.bench import run_latency

    res = run_latency(n=10, warmup=1, progress=False)
    # churn's documented example names a customer of the demo world, not of the tests'
    expected = {"delivery_estimate", "delivery_transit", "fraud_return", "fraud_claim"}
    expected |= {"recs_recommend"}
    assert expected <= set(res) - {"meta"}, res["meta"]["skipped"]
    for name in expected:
        row = res[name]["ppx"]
        assert 0 < row["p50_ms"] <= row["p99_ms"] and row["requests"] == 10


def test_columnar_delivery_path_answers_like_the_frame_path(services, in_process):
    """The pandas-free scoring path gives the registered model's own DataFrame answers."""
    import json

    services.need("delivery")
    M = in_process
    store = M._store()
    store.load_all()
    model = store.get("delivery")
    assert model.columnar
    checkout = _example(services, "delivery_estimate")
    bodies = [
        checkout,
        _example(services, "delivery_transit"),
        {**checkout, "promise_date": "2025-12-30", "promise_target": 0.95},
        {**checkout, "ordered_at": "2025-11-20T12:00:00+02:00", "weight_kg": None},
    ]
    endpoint = M.ENDPOINTS["delivery_estimate"]
    requests = [endpoint.request.model_validate(b) for b in bodies]
    fast = model.predict_records(requests, endpoint)
    frame = model.predict(M._default_frame(requests))
    slow = json.loads(frame.to_json(orient="records", date_format="iso", double_precision=15))
    assert len(fast) == len(slow) == 4
    for a, b in zip(fast, slow, strict=True):
        _same_answer(a, b)
    assert fast[1]["stage"] == "transit" and fast[0]["stage"] == "checkout"


@pytest.mark.parametrize("endpoint_name", ["fraud_return", "fraud_claim"])
def test_columnar_fraud_path_answers_like_the_frame_path(services, in_process, endpoint_name):
    """The frame-free fraud path gives the frame path's scores (to 1e-9) and decisions,
    one request at a time and batched, with optional fields left out."""
    services.need("fraud")
    M = in_process
    store = M._store()
    store.load_all()
    model = store.get("fraud")
    assert model.columnar
    endpoint = M.ENDPOINTS[endpoint_name]
    assert endpoint.columnar_ok and endpoint.constants == {"kind": endpoint_name.split("_")[1]}
    ex = _example(services, endpoint_name)
    bodies = [
        ex,
        {**ex, "amount": 310.0, "requested_at": "2025-11-30T08:00:00Z"},
        {k: v for k, v in ex.items() if k not in ("ordered_at", "order_id", "delivered_at")},
        {**ex, "customer_id": 10**9, "signup_at": "2025-10-01T00:00:00", "device_id": "d-1"},
    ]
    requests = [endpoint.request.model_validate(b) for b in bodies]
    batched = model.predict_records(requests, endpoint)
    alone = [model.predict_records([r], endpoint)[0] for r in requests]
    # a batch and a lone request run different float32 matrix sizes: compare like with like
    frame_batched = model.predict(endpoint.to_frame(requests))
    frame_alone = pd.concat(
        [model.predict(endpoint.to_frame([r])) for r in requests], ignore_index=True
    )
    for fast, frame_out in ((batched, frame_batched), (alone, frame_alone)):
        assert len(fast) == len(frame_out) == 4
        np.testing.assert_allclose(
            [r["p_fraud"] for r in fast], frame_out["p_fraud"], rtol=0, atol=1e-9
        )
        for rec, (_, row) in zip(fast, frame_out.iterrows(), strict=True):
            for k in ("head", "review", "recommendation", "ring_member", "review_threshold"):
                assert rec[k] == row[k], k
