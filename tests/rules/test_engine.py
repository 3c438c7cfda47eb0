"""The decision engine with a fake model service: scores used, failures fall back, ledger."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from ppx.rules import engine as E
from ppx.rules.ledger import Ledger
from ppx.rules.model_client import ModelClient, parse_churn, parse_delivery, parse_fraud, parse_recs


def _fake(routes: dict[str, object]):
    calls: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        calls.append((request.url.path, body))
        out = routes.get(request.url.path)
        if out is None:
            return httpx.Response(404, json={"error": "no route"})
        if isinstance(out, int):
            return httpx.Response(out, json={"error": "model unavailable"})
        if out == "timeout":
            raise httpx.ReadTimeout("slow", request=request)
        return httpx.Response(200, json=out)

    return httpx.MockTransport(handler), calls


def _engine(policy, routes, ledger=None):
    transport, calls = _fake(routes)
    client = ModelClient("http://models", timeout=0.5, transport=transport, token="")
    return E.DecisionEngine(policy, client, ledger), calls


CUSTOMER = {
    "customer_id": 42,
    "tier": "silver",
    "spend_12m": 420,
    "subscription_id": 9,
    "email_opt_in": True,
    "push_opt_in": True,
}
LATE = {
    "event_type": "delivered",
    "order_id": 5,
    "customer_id": 42,
    "occurred_at": "2025-03-05T12:00:00",
    "ordered_at": "2025-03-01T09:00:00",
    "order_value": 80,
    "promised_date": "2025-03-02",
    "delivered_at": "2025-03-05T12:00:00",
}


def test_late_delivery_uses_churn_score_and_writes_ledger(policy, tmp_path):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    eng, calls = _engine(
        policy, {"/churn/score": [{"p_churn_90d": 0.42, "model": "ppx-churn"}]}, ledger
    )
    req = E.OrderEventRequest.model_validate({"event": LATE, "customer": CUSTOMER})
    res = asyncio.run(eng.order_event(req))
    assert [c[0] for c in calls] == ["/churn/score"]  # only the model this decision needs
    assert calls[0][1] == {"subscription_id": 9, "customer_id": 42, "as_of": "2025-03-05T12:00:00"}
    assert any(
        "churn risk 0.42 >= 0.30 -> x1.5 -> 150 apology points" in r for r in res.decision.reasons
    )
    assert res.balance == 100 + 150 + 100  # earn + apology + surprise tier-up gift
    again = asyncio.run(eng.order_event(req))  # a retried request awards nothing new
    assert again.balance == res.balance and not any(p["created"] for p in again.ledger)
    ledger.dispose()


@pytest.mark.parametrize("failure", [503, "timeout", {"unexpected": 1}])
def test_model_failure_falls_back_and_says_so(policy, failure):
    eng, _ = _engine(
        policy, {"/churn/score": failure, "/fraud/return": failure, "/delivery/estimate": failure}
    )
    res = asyncio.run(
        eng.order_event(E.OrderEventRequest.model_validate({"event": LATE, "customer": CUSTOMER}))
    )
    d = res.decision
    assert any(
        "churn model unavailable" in f and "neutral churn risk 0.15" in f for f in d.fallbacks
    )
    assert [a.points for a in d.actions if a.ledger_type == "apology"] == [100]
    ret = E.ReturnDecisionRequest.model_validate(
        {
            "request": {
                "return_id": 1,
                "order_id": 5,
                "customer_id": 42,
                "requested_at": "2025-03-08T10:00:00",
                "amount": 20,
            },
            "customer": {**CUSTOMER, "tier": "gold"},
        }
    )
    r = asyncio.run(eng.return_(ret)).decision
    assert r.outcome == "refund_on_receipt" and any(
        "fraud model unavailable" in f for f in r.fallbacks
    )
    placed = E.OrderEventRequest.model_validate(
        {
            "event": {**LATE, "event_type": "in_transit", "occurred_at": "2025-03-02T08:00:00"},
            "customer": CUSTOMER,
        }
    )
    p = asyncio.run(eng.order_event(placed)).decision
    assert any("carrier's promise" in f for f in p.fallbacks) and p.messages == []


def test_no_model_service_means_documented_fallbacks(policy):
    eng = E.DecisionEngine(policy, None, None)
    res = asyncio.run(
        eng.order_event(E.OrderEventRequest.model_validate({"event": LATE, "customer": CUSTOMER}))
    )
    assert any("no model service configured" in f for f in res.decision.fallbacks)


def test_given_scores_skip_the_model_calls(policy):
    eng, calls = _engine(policy, {})
    req = E.OrderEventRequest.model_validate(
        {"event": LATE, "customer": CUSTOMER, "scores": {"churn_risk": 0.6}}
    )
    res = asyncio.run(eng.order_event(req))
    assert calls == [] and res.decision.fallbacks == []


def test_response_parsers_accept_the_documented_shapes():
    assert parse_delivery({"p50_days": 2.0, "p90_days": 3.5}).p90_days == 3.5
    assert parse_delivery([{"quantiles": {"0.5": 2, "0.9": 4}}]).p50_days == 2
    assert parse_churn({"predictions": [{"p_churn_90d": 0.3}]}, 90) == 0.3
    assert parse_fraud({"score": 0.7, "ring_size": 4}) == (0.7, True)
    assert parse_recs({"items": [{"product_id": 3}, {"product_id": 5}]}) == [3, 5]
    with pytest.raises(ValueError, match="outside"):
        parse_churn({"p_churn_90d": 1.7}, 90)
    with pytest.raises(ValueError, match="none of"):
        parse_fraud({"nothing": 1})
