"""A date that does not parse is a 400 naming the field and the format (ISO 8601), from
the model service and from the decision service alike, and every 400's top-level
``error`` says the route and the failing fields in one sentence (``detail`` keeps one
item per error for machines). Both services run in-process (their ASGI apps); no trained
model is needed: validation answers before any model. The in-process clients are the
session fixtures of ``conftest.py``."""

from __future__ import annotations

import logging
import re
from types import SimpleNamespace

FORMAT = "ISO 8601, e.g. 2026-12-03 or 2026-12-03T09:00:00"


def test_model_service_names_the_bad_date_field_and_the_format(model_client):
    client, M = model_client  # noqa: N806
    example = M.ENDPOINTS["fraud_return"].example
    bad = {**example, "ordered_at": "03/12/2026"}
    said = f"ordered_at: '03/12/2026' is not a date-time; expected {FORMAT}"
    for body, loc, error in (
        (bad, ["ordered_at"], f"/fraud/return: {said}"),
        ([example, bad], [1, "ordered_at"], f"/fraud/return: item 1: {said}"),
    ):
        r = client.post("/fraud/return", json=body)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == error
        (item,) = r.json()["detail"]
        assert item["loc"] == loc
        assert item["msg"] == said
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
    ordered = f"event.ordered_at: '03/12/2026' is not a date-time; expected {FORMAT}"
    promised = (
        "event.promised_date: '2026-12-08T10:30:00' is not a date; "
        "expected ISO 8601, e.g. 2026-12-03"
    )
    assert detail[("event", "ordered_at")] == ordered
    assert detail[("event", "promised_date")] == promised
    assert r.json()["error"] == f"/decide/order-event: 2 errors: (1) {ordered}; (2) {promised}"
    # the daily batch validates its items itself: the same wording
    r = decision_client.post(
        "/decide/daily-batch", json={"items": [{"customer": {"customer_id": 2}, "now": "12/03"}]}
    )
    assert r.status_code == 400, r.text
    said = f"items.0.now: '12/03' is not a date-time; expected {FORMAT}"
    assert r.json()["error"] == f"/decide/daily-batch: {said}"  # one object, not a list
    assert r.json()["detail"][0]["loc"] == ["items", 0, "now"]


def test_other_validation_errors_keep_their_message(decision_client):
    event = {"event_type": "placed", "order_id": 0, "customer_id": 2, "occurred_at": "2026-12-03"}
    r = decision_client.post(
        "/decide/order-event", json={"event": event, "customer": {"customer_id": 2}}
    )
    assert r.status_code == 400, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["event", "order_id"]
    assert item["msg"] == "Input should be greater than or equal to 1"
    assert r.json()["error"] == (
        "/decide/order-event: event.order_id: Input should be greater than or equal to 1"
    )


def test_a_400_lists_the_first_errors_and_counts_the_rest(model_client):
    client, M = model_client  # noqa: N806
    example = M.ENDPOINTS["fraud_return"].example
    bad = {**example, "ordered_at": "x", "requested_at": "y"}
    r = client.post("/fraud/return", json=[bad, bad, example, {**example, "order_id": 0}])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith("/fraud/return: 5 errors: (1) item 0: ")
    assert "(3) item 1: " in error and "(4)" not in error
    assert error.endswith("; and 2 more in detail")
    assert len(r.json()["detail"]) == 5
    # a body that is no request at all: the sentence says so, without a field
    r = client.post("/fraud/return", content=b"[1", headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("/fraud/return: body is not valid JSON")


def test_a_valid_request_passes_the_wording_untouched(decision_client):
    event = {"event_type": "placed", "order_id": 1, "customer_id": 2, "occurred_at": "2026-12-03"}
    r = decision_client.post(
        "/decide/order-event", json={"event": event, "customer": {"customer_id": 2}}
    )
    assert r.status_code == 200, r.text
    assert "error" not in r.json() and int(r.headers["content-length"]) == len(r.content)


def _failing(M, fail: Exception):  # noqa: N803
    """A stand-in fraud model whose predict raises ``fail`` (restored by the caller)."""

    def predict_records(requests, endpoint):
        raise fail

    return SimpleNamespace(name="fraud", predict_records=predict_records)


def test_a_fault_inside_a_model_is_a_logged_500_with_a_request_id(model_client, caplog):
    client, M = model_client  # noqa: N806
    example = M.ENDPOINTS["fraud_return"].example
    stand_in = M.STORE.loaded["fraud"]
    M.STORE.loaded["fraud"] = _failing(M, ValueError("cannot reshape array of size 7"))
    try:
        with caplog.at_level(logging.ERROR, logger="ppx.serving"):
            r = client.post("/fraud/return", json=example)
    finally:
        M.STORE.loaded["fraud"] = stand_in
    assert r.status_code == 500, r.text
    body = r.json()
    rid = body["request_id"]
    assert re.fullmatch(r"[0-9a-f]{16}", rid)
    assert r.headers["x-request-id"] == rid
    assert body["error"] == (
        f"/fraud/return: internal error (ValueError); request id {rid} in the service log"
    )
    assert body["detail"] == [{"loc": [], "msg": body["error"], "status": 500, "request_id": rid}]
    assert "reshape" not in r.text and "Traceback" not in r.text  # internals stay in the log
    (record,) = [rec for rec in caplog.records if rid in rec.getMessage()]
    assert record.levelno == logging.ERROR and "cannot reshape" in str(record.exc_info[1])


def test_a_request_the_model_refuses_is_a_422_naming_the_field(model_client):
    from ppx.data.errors import RequestError

    client, M = model_client  # noqa: N806
    example = M.ENDPOINTS["fraud_return"].example
    stand_in = M.STORE.loaded["fraud"]
    M.STORE.loaded["fraud"] = _failing(M, RequestError("product_id: unknown product 999"))
    try:
        r = client.post("/fraud/return", json=example)
    finally:
        M.STORE.loaded["fraud"] = stand_in
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "/fraud/return: product_id: unknown product 999"
    assert "request_id" not in r.json()
