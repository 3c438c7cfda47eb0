"""The decision engine against the real model service with real (tiny) models.

The rules layer's own tests use a fake model service; this one proves the two services
agree on the contract: every decision that needs a model gets its score from the served
model, with no fallback, and the scores flow into the decision.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from ppx.rules import engine as E
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import load_policy
from ppx.serve.routes import example_request

pytestmark = pytest.mark.serving


def _decide(url: str, calls):
    async def go():
        # a generous timeout: the services share two cores with the test run
        client = ModelClient(url, timeout=30.0, token="")
        try:
            eng = E.DecisionEngine(load_policy(), client, None)
            return [(await call(eng)).decision for call in calls]
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_decisions_use_the_served_models_without_fallback(services):
    for model in ("delivery", "churn", "fraud", "recs"):  # the models the policy consults
        services.need(model)
    subscriber = services.registry.subscriber
    # the churn model's own "now" (the end of its training data) is a moment at which
    # the subscriber is active
    r = httpx.post(services.open + "/churn/score", json={"customer_id": subscriber}, timeout=60)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text
    now = r.json()["as_of"]
    lane = example_request("delivery_estimate")
    ret = example_request("fraud_return")
    claim = example_request("fraud_claim")
    late = {
        "event_type": "delivered",
        "order_id": 5,
        "customer_id": subscriber,
        "occurred_at": now,
        "ordered_at": "2025-01-01T09:00:00",
        "order_value": 80,
        "promised_date": "2025-01-02",
        "delivered_at": now,
    }
    customer = {"customer_id": subscriber, "subscription_id": 1, "email_opt_in": True}
    in_transit = {
        "event_type": "in_transit",
        "order_id": 6,
        "customer_id": 42,
        "occurred_at": "2025-12-02T09:00:00",
        "ordered_at": lane["ordered_at"],
        "carrier": lane["carrier"],
    }
    on_time = {**late, "customer_id": 42, "promised_date": "2030-01-01"}
    calls = [
        lambda e: e.order_event(
            E.OrderEventRequest.model_validate({"event": late, "customer": customer})
        ),
        lambda e: e.order_event(
            E.OrderEventRequest.model_validate(
                {
                    "event": in_transit,
                    "customer": {"customer_id": 42, "push_opt_in": True},
                    "model_inputs": {
                        "delivery": {
                            k: lane[k] for k in ("warehouse", "dest_region", "service_level")
                        }
                    },
                }
            )
        ),
        lambda e: e.order_event(
            # the thank-you (with recommendations) is marketing: it needs the opt-in
            E.OrderEventRequest.model_validate(
                {"event": on_time, "customer": {"customer_id": 42, "email_opt_in": True}}
            )
        ),
        lambda e: e.return_(
            E.ReturnDecisionRequest.model_validate(
                {
                    "request": {
                        "return_id": 1,
                        "order_id": ret["order_id"],
                        "customer_id": ret["customer_id"],
                        "product_id": ret["product_id"],
                        "requested_at": ret["requested_at"],
                        "delivered_at": ret["delivered_at"],
                        "amount": ret["amount"],
                        "reason": ret["reason"],
                    },
                    "customer": {"customer_id": ret["customer_id"], "tier": "gold"},
                }
            )
        ),
        lambda e: e.claim(
            E.ClaimDecisionRequest.model_validate(
                {
                    "request": {
                        "claim_id": 2,
                        "order_id": claim["order_id"],
                        "customer_id": claim["customer_id"],
                        "claimed_at": claim["requested_at"],
                        "claim_type": claim["claim_type"],
                        "amount": claim["amount"],
                        "signature": claim["signature"],
                    },
                    "customer": {"customer_id": claim["customer_id"]},
                }
            )
        ),
    ]
    decisions = _decide(services.open, calls)
    for d in decisions:
        assert d.fallbacks == [], (d.decision, d.fallbacks)
    late_d, transit_d, on_time_d, return_d, claim_d = decisions
    assert any("churn risk" in r for r in late_d.reasons), late_d.reasons
    assert return_d.outcome and claim_d.outcome
    thank_you = [m for m in on_time_d.messages if m.message_type == "thank_you"]
    assert thank_you and thank_you[0].content.get("recommendations"), on_time_d.messages


def test_the_served_model_service_answers_under_the_callers_request_id(services):
    """What the decision service's model calls rely on: the id it sends is the one the
    model service answers (and would log a fault) under; a sane id only."""
    services.need("delivery")
    body = example_request("delivery_estimate")
    r = httpx.post(
        f"{services.open}/delivery/estimate",
        json=body,
        headers={"X-Request-ID": "decision-0003"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-request-id"] == "decision-0003"
    r = httpx.post(
        f"{services.open}/delivery/estimate",
        json=body,
        headers={"X-Request-ID": "no spaces"},
        timeout=30,
    )
    assert r.status_code == 200 and len(r.headers["x-request-id"]) == 16
