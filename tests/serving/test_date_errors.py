"""A date that does not parse is a 400 naming the field and the format (ISO 8601), from
the model service and from the decision service alike. Both services run in-process
(their ASGI apps); no trained model is needed: validation answers before any model."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from starlette.testclient import TestClient

from ppx.config import PROJECT_ROOT

FORMAT = "ISO 8601, e.g. 2026-12-03 or 2026-12-03T09:00:00"


@pytest.fixture(scope="module")
def serving_modules():
    import sys

    sys.path.insert(0, str(PROJECT_ROOT))  # serving/ sits beside the package
    try:
        from serving import decision_service, model_service

        yield model_service, decision_service
    finally:
        sys.path.remove(str(PROJECT_ROOT))


# Each app is built once per process: BentoML registers its metrics when building it.


@pytest.fixture(scope="module")
def model_client(serving_modules):
    M = serving_modules[0]  # noqa: N806
    # a ready store holding a stand-in fraud model, so the guard lets requests through to
    # validation (which answers before any model is called); nothing to load or warm up
    store = M.ModelStore(alias="champion", models=("fraud",))
    store.loaded["fraud"] = SimpleNamespace(name="fraud")
    store.ready.set()
    store.start = lambda: None
    import torch

    threads = torch.get_num_threads()  # the service sets its own: not the tests' process
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(M, "STORE", store)
        with TestClient(M.ModelService.to_asgi()) as client:
            yield client, M
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def decision_client(serving_modules):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PPX_DECISION_GC", "0")  # the service's GC settings: not the tests' process
        with TestClient(serving_modules[1].DecisionService.to_asgi()) as client:
            yield client


def test_model_service_names_the_bad_date_field_and_the_format(model_client):
    client, M = model_client  # noqa: N806
    example = M.ENDPOINTS["fraud_return"].example
    bad = {**example, "ordered_at": "03/12/2026"}
    for body, loc in ((bad, ["ordered_at"]), ([example, bad], [1, "ordered_at"])):
        r = client.post("/fraud/return", json=body)
        assert r.status_code == 400, r.text
        (item,) = r.json()["detail"]
        assert item["loc"] == loc
        assert item["msg"].startswith("ordered_at: '03/12/2026' is not a date-time")
        assert FORMAT in item["msg"]
    # a number is no date either (epoch seconds are refused, not guessed)
    r = client.post("/fraud/return", json={**example, "requested_at": 1764755700})
    assert r.status_code == 400, r.text
    (item,) = r.json()["detail"]
    assert item["msg"] == f"requested_at: 1764755700 is not a date-time; expected {FORMAT}"


def test_decision_service_names_the_bad_date_field_and_the_format(decision_client):
    event = {
        "event_type": "placed",
        "order_id": 1,
        "customer_id": 2,
        "occurred_at": "2026-12-03T09:00:00",
        "ordered_at": "03/12/2026",
        "promised_date": "2026-12-08T10:30:00",  # a date field given a time of day
    }
    r = decision_client.post(
        "/decide/order-event", json={"event": event, "customer": {"customer_id": 2}}
    )
    assert r.status_code == 400, r.text
    detail = {tuple(d["loc"]): d["msg"] for d in r.json()["detail"]}
    assert detail[("event", "ordered_at")] == (
        f"event.ordered_at: '03/12/2026' is not a date-time; expected {FORMAT}"
    )
    assert detail[("event", "promised_date")] == (
        "event.promised_date: '2026-12-08T10:30:00' is not a date; "
        "expected ISO 8601, e.g. 2026-12-03"
    )
    # the daily batch validates its items itself: the same wording
    r = decision_client.post(
        "/decide/daily-batch", json={"items": [{"customer": {"customer_id": 2}, "now": "12/03"}]}
    )
    assert r.status_code == 400, r.text
    assert f"items.0.now: '12/03' is not a date-time; expected {FORMAT}" in r.text


def test_other_validation_errors_keep_their_message(decision_client):
    event = {"event_type": "placed", "order_id": 0, "customer_id": 2, "occurred_at": "2026-12-03"}
    r = decision_client.post(
        "/decide/order-event", json={"event": event, "customer": {"customer_id": 2}}
    )
    assert r.status_code == 400, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["event", "order_id"]
    assert item["msg"] == "Input should be greater than or equal to 1"
