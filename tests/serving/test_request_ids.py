"""Request ids: every answer of both services carries ``X-Request-ID`` (the caller's own
when it is sane, a new one otherwise); a fault in a decision is a logged 500 under that
id, with the model service's body shape; the decision service sends its id on to the
model service. Both services run in-process (the session fixtures of ``conftest.py``)."""

from __future__ import annotations

import logging
import re

import pytest

HEX16 = re.compile(r"[0-9a-f]{16}")
PLACED = {"event_type": "placed", "order_id": 5, "customer_id": 2, "occurred_at": "2026-12-03"}
ORDER = {"event": PLACED, "customer": {"customer_id": 2}}


def _decisions(serving_modules):
    return serving_modules[1]


def test_a_fault_in_a_decision_is_a_logged_500_under_the_request_id(
    decision_client, serving_modules, monkeypatch, caplog
):
    D = _decisions(serving_modules)  # noqa: N806
    secret = "postgresql://ppx:hunter2@ledger.internal/ppx"  # internals the body must not show

    async def broken(req):
        raise RuntimeError(f"could not write to {secret}")

    monkeypatch.setattr(D.engine(), "order_event", broken)
    with caplog.at_level(logging.ERROR, logger="ppx.serving"):
        r = decision_client.post("/decide/order-event", json=ORDER)
    assert r.status_code == 500, r.text
    body = r.json()
    rid = body["request_id"]
    assert HEX16.fullmatch(rid) and r.headers["x-request-id"] == rid
    error = (
        f"/decide/order-event: internal error (RuntimeError); request id {rid} in the service log"
    )
    assert body == {
        "error": error,
        "detail": [{"loc": [], "msg": error, "status": 500, "request_id": rid}],
        "request_id": rid,
    }
    assert "hunter2" not in r.text and "Traceback" not in r.text
    # one ERROR line in all (BentoML logs none of its own), with the id and the traceback
    (record,) = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert record.getMessage() == f"request failed on /decide/order-event (request id {rid})"
    assert "hunter2" in str(record.exc_info[1])  # the traceback is in the log

    # the caller's own id names the fault when it sent one
    with caplog.at_level(logging.ERROR, logger="ppx.serving"):
        r = decision_client.post(
            "/decide/order-event", json=ORDER, headers={"X-Request-ID": "checkout-7781_a"}
        )
    assert r.status_code == 500
    assert r.json()["request_id"] == r.headers["x-request-id"] == "checkout-7781_a"
    assert any("checkout-7781_a" in rec.getMessage() for rec in caplog.records)


def test_the_daily_batch_fault_is_answered_alike(
    decision_client, serving_modules, monkeypatch, caplog
):
    D = _decisions(serving_modules)  # noqa: N806

    async def broken(req):
        raise KeyError("tier_up")

    monkeypatch.setattr(D.engine(), "daily_batch", broken)
    items = [{"customer": {"customer_id": 2}, "now": "2026-12-03T09:00:00"}]
    with caplog.at_level(logging.ERROR, logger="ppx.serving"):
        r = decision_client.post("/decide/daily-batch", json={"items": items})
    assert r.status_code == 500, r.text
    rid = r.headers["x-request-id"]
    assert r.json()["error"] == (
        f"/decide/daily-batch: internal error (KeyError); request id {rid} in the service log"
    )
    assert any(rid in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_every_answer_carries_a_request_id(decision_client, model_client, monkeypatch):
    client, _ = model_client
    for c, path in ((decision_client, "/livez"), (client, "/livez"), (client, "/readyz")):
        r = c.get(path)
        assert r.status_code == 200 and HEX16.fullmatch(r.headers["x-request-id"]), path
    # a 400 of each service, the model service's guard (405) and a decision's 200
    r = decision_client.post("/decide/order-event", json={"event": {}, "customer": {}})
    assert r.status_code == 400 and HEX16.fullmatch(r.headers["x-request-id"])
    r = client.get("/fraud/return")
    assert r.status_code == 405 and HEX16.fullmatch(r.headers["x-request-id"])
    r = decision_client.post("/decide/order-event", json=ORDER)
    assert r.status_code == 200 and HEX16.fullmatch(r.headers["x-request-id"])
    # the decision service's token check answers with an id too
    monkeypatch.setenv("PPX_API_TOKEN", "t0ken")
    r = decision_client.get("/loyalty/2/balance")
    assert r.status_code == 401 and HEX16.fullmatch(r.headers["x-request-id"])
    # the model service's document declares it on a 500
    doc = client.get("/docs.json").json()
    assert "X-Request-ID" in doc["paths"]["/fraud/return"]["post"]["responses"]["500"]["headers"]
    # two requests never share an id
    ids = {decision_client.get("/livez").headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize(
    "given",
    ["0123456789abcdef", "order-42_retry-1", "abcdefgh", "A" * 64],
)
def test_a_sane_caller_id_is_echoed(decision_client, model_client, given):
    client, _ = model_client
    for c in (decision_client, client):
        assert c.get("/livez", headers={"X-Request-ID": given}).headers["x-request-id"] == given


@pytest.mark.parametrize(
    "given",
    ["short", "A" * 65, "has space here", "semi;colon-123", "ünïcødé-id-123", ""],
)
def test_an_insane_caller_id_is_replaced(decision_client, model_client, given):
    client, _ = model_client
    for c in (decision_client, client):
        r = c.get("/livez", headers={"X-Request-ID": given.encode()})
        assert HEX16.fullmatch(r.headers["x-request-id"]), r.headers["x-request-id"]


def test_the_decision_service_sends_its_id_to_the_model_service(
    decision_client, serving_modules, monkeypatch
):
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from ppx.serve.launch import app_in_thread

    seen: list[str | None] = []

    async def delivery(request):
        seen.append(request.headers.get("x-request-id"))
        return JSONResponse({"p50_days": 3.0, "promise_days": 5.0})

    fake = Starlette(routes=[Route("/delivery/estimate", delivery, methods=["POST"])])
    D = _decisions(serving_modules)  # noqa: N806
    with app_in_thread(fake, start_timeout=120.0) as url:
        monkeypatch.setattr(D.engine().models, "base_url", url)
        monkeypatch.setattr(D.engine().models, "timeout", 30.0)  # a loaded machine is slow
        r = decision_client.post(
            "/decide/order-event", json=ORDER, headers={"X-Request-ID": "decision-0001"}
        )
        assert r.status_code == 200, r.text
        r2 = decision_client.post("/decide/order-event", json=ORDER)
    assert r2.status_code == 200, r2.text
    assert "delivery" not in r.json()["decision"]["fallbacks"]
    assert seen == ["decision-0001", r2.headers["x-request-id"]]


def test_the_model_service_logs_a_fault_under_the_callers_id(model_client, caplog):
    from types import SimpleNamespace

    client, M = model_client  # noqa: N806

    def predict_records(requests, endpoint):
        raise ValueError("cannot reshape array of size 7")

    stand_in = M.STORE.loaded["fraud"]
    M.STORE.loaded["fraud"] = SimpleNamespace(name="fraud", predict_records=predict_records)
    try:
        with caplog.at_level(logging.ERROR, logger="ppx.serving"):
            r = client.post(
                "/fraud/return",
                json=M.ENDPOINTS["fraud_return"].example,
                headers={"X-Request-ID": "decision-0002"},
            )
    finally:
        M.STORE.loaded["fraud"] = stand_in
    assert r.status_code == 500, r.text
    assert r.json()["request_id"] == r.headers["x-request-id"] == "decision-0002"
    (record,) = [rec for rec in caplog.records if "decision-0002" in rec.getMessage()]
    assert "cannot reshape" in str(record.exc_info[1]) and "reshape" not in r.text


def test_a_fault_merged_from_another_call_is_logged_again_under_this_id(serving_modules, caplog):
    from ppx.serve import request_ids
    from serving import schemas as S

    M = serving_modules[0]  # noqa: N806
    endpoint = M.ENDPOINTS["fraud_return"]
    fault = ValueError("boom")
    theirs = S.ItemError(500, "... request id aaaaaaaaaaaaaaaa ...", None, "a" * 16, fault)
    token = request_ids.CURRENT.set("mine-12345678")
    try:
        with caplog.at_level(logging.ERROR, logger="ppx.serving"):
            (mine, ok) = M._own_ids(endpoint, [theirs, "ok"])
    finally:
        request_ids.CURRENT.reset(token)
    assert ok == "ok" and (mine.status, mine.request_id) == (500, "mine-12345678")
    assert "mine-12345678" in mine.message and "aaaa" not in mine.message
    (record,) = [rec for rec in caplog.records if "mine-12345678" in rec.getMessage()]
    assert record.exc_info[1] is fault


def test_a_fault_in_a_mounted_route_is_the_same_logged_500(
    decision_client, serving_modules, monkeypatch, caplog
):
    D = _decisions(serving_modules)  # noqa: N806

    def broken(customer_id, limit):
        raise OSError("disk I/O error on /var/lib/ppx/ledger.db")

    monkeypatch.setattr(D.engine(), "balance", broken)
    with caplog.at_level(logging.ERROR):
        r = decision_client.get("/loyalty/2/balance", headers={"X-Request-ID": "balance-check-1"})
    assert r.status_code == 500, r.text
    error = (
        "/loyalty/2/balance: internal error (OSError); request id balance-check-1 in the "
        "service log"
    )
    assert r.json() == {
        "error": error,
        "detail": [{"loc": [], "msg": error, "status": 500, "request_id": "balance-check-1"}],
        "request_id": "balance-check-1",
    }
    assert r.headers["x-request-id"] == "balance-check-1" and "ledger.db" not in r.text
    # one ERROR line, with the id and the traceback (the exception goes no further)
    (record,) = [rec for rec in caplog.records if rec.levelno >= logging.ERROR]
    assert "balance-check-1" in record.getMessage() and "ledger.db" in str(record.exc_info[1])


def test_a_bentoml_unavailable_keeps_its_status(decision_client, serving_modules, monkeypatch):
    from bentoml.exceptions import ServiceUnavailable

    D = _decisions(serving_modules)  # noqa: N806

    async def busy(req):
        raise ServiceUnavailable("runner busy")

    monkeypatch.setattr(D.engine(), "order_event", busy)
    r = decision_client.post("/decide/order-event", json=ORDER)
    assert r.status_code == 503 and "request_id" not in r.text
    assert HEX16.fullmatch(r.headers["x-request-id"])
