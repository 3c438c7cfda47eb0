"""The /subscriptions and /returns routes in process: statuses, bodies, idempotency."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from ppx.rules.engine import DecisionEngine
from ppx.rules.ledger import Ledger
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import load_policy
from serving.self_service_routes import returns_app, subscription_app


async def _models(path, payload):
    if path == "/churn/score":
        reasons = [{"feature": "price_increase_2m", "contribution": 0.7}]
        return 200, json.dumps({"status": "ok", "p_churn_90": 0.55, "reasons": reasons})
    if path == "/fraud/return":
        return 200, json.dumps({"p_fraud": 0.03, "ring_member": False})
    return 200, json.dumps({"product_ids": [5, 6]})


@pytest.fixture()
def clients(tmp_path):
    engine = DecisionEngine(
        load_policy("src/rules/policy/save_offers.yaml"),
        ModelClient(send=_models),
        Ledger(f"sqlite:///{tmp_path / 'ledger.db'}"),
    )
    subs = TestClient(subscription_app(lambda: engine))
    rets = TestClient(returns_app(lambda: engine))
    return subs, rets, engine


SUB = {
    "customer_id": 42,
    "product_id": 7,
    "cadence_days": 30,
    "price": 24.0,
    "next_delivery_at": "2099-01-10T06:00:00",
}


def test_subscription_routes(clients):
    subs, _, _ = clients
    assert subs.put("/3", json=SUB).status_code == 200
    assert subs.put("/3", json={**SUB, "request_key": "again"}).status_code == 409
    r = subs.post("/3/resume", json={"request_key": "r1"})
    assert r.status_code == 409 and "it is active" in r.json()["error"]
    r = subs.post("/3/skip", json={})
    assert r.status_code == 422 and "request key is required" in r.json()["error"]
    r = subs.post("/3/skip", headers={"Idempotency-Key": "s1"})
    assert r.status_code == 200 and r.json()["events"] == ["skip"]
    again = subs.post("/3/skip", headers={"Idempotency-Key": "s1"})
    assert again.status_code == 200 and again.json()["replayed"] is True
    r = subs.post("/3/cadence", json={"request_key": "c1", "cadence_days": 21})
    assert r.status_code == 422 and "[14, 30, 45, 60]" in r.json()["error"]
    r = subs.post("/3/pause", json={"request_key": "p1", "resume_on": "not a date"})
    assert r.status_code == 400
    said = "resume_on: 'not a date' is not a date; expected ISO 8601, e.g. 2026-12-03"
    assert said in r.json()["error"] and r.json()["error"].count("resume_on") == 1
    r = subs.post("/3/pause", json={"request_key": "p1", "resum_on": "2099-01-01"})
    assert r.status_code == 400 and "resum_on" in r.json()["error"]
    assert subs.post("/abc/skip", json={"request_key": "z"}).status_code == 400
    assert subs.post("/77/skip", json={"request_key": "z"}).status_code == 404
    # cancel: the offer first (price reason, risk 0.55 -> discount), then accept
    r = subs.post("/3/cancel", json={"request_key": "x1"})
    assert r.status_code == 200 and r.json()["status"] == "offer"
    offer = r.json()["offer"]
    assert offer["kind"] == "discount" and offer["cost"] == pytest.approx(24 * 0.2 * 3)
    body = {"request_key": "x2", "decision": "accept", "offer_id": offer["offer_id"]}
    r = subs.post("/3/cancel", json=body)
    assert r.status_code == 200 and r.json()["status"] == "saved"
    got = subs.get("/3").json()
    assert got["subscription"]["next_price"] == pytest.approx(19.2)
    assert [e["event_type"] for e in got["events"]] == [
        "start",
        "skip",
        "save_offer_made",
        "save_offer_accepted",
        "discount",
    ]


def test_return_routes(clients):
    _, rets, engine = clients
    engine.ledger.award(42, 150, "earn:5", "earn", order_id=5)
    body = {
        "request": {
            "return_id": 9,
            "order_id": 5,
            "customer_id": 42,
            "product_id": 7,
            "requested_at": "2025-03-08T10:00:00",
            "delivered_at": "2025-03-05T10:00:00",
            "amount": 100,
        },
        "customer": {"customer_id": 42, "tier": "gold", "spend_12m": 900, "orders_12m": 5},
        "choice": {
            "resolution": "exchange",
            "variant": "M",
            "exchange": {"product_id": 7, "variant": "L", "unit_price": 100},
        },
    }
    r = rets.post("/resolve", json=body)
    assert r.status_code == 200, r.text
    res = r.json()["resolution"]
    assert res["outcome"] == "exchange_shipped_ahead" and res["points_reversed"] == 0
    assert any("fraud risk 0.03" in x for x in r.json()["decision"]["reasons"])
    assert rets.post("/resolve", json=body).json()["resolution"]["replayed"] is True
    r = rets.post("/9/receive", json={})
    assert r.status_code == 200 and r.json()["resolution"]["status"] == "closed"
    assert sum(e["quantity"] for e in rets.get("/9").json()["inventory"]) == 0
    assert rets.get("/10").status_code == 404
    too_dear = {**body, "request": {**body["request"], "return_id": 10}}
    too_dear["choice"] = {
        "resolution": "exchange",
        "exchange": {"product_id": 8, "unit_price": 900},
    }
    r = rets.post("/resolve", json=too_dear)
    assert r.status_code == 422 and "max_exchange_difference" in r.json()["error"]
    bad = {**body, "choice": {"resolution": "gift"}}
    r = rets.post("/resolve", json=bad)
    assert r.status_code == 400 and "choice.resolution" in r.json()["error"]
    assert engine.ledger.balance(42) == 150
