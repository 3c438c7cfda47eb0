"""The decision engine with a fake model service: scores used, failures fall back, ledger."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from ppx.rules import engine as E
from ppx.rules.ledger import Ledger
from ppx.rules.model_client import ModelClient, parse_churn, parse_delivery, parse_fraud, parse_recs


def _request_models() -> dict[str, type]:
    """route -> the model service's request model: the fake refuses what the real one would."""
    from ppx.models import registry

    return {e.route: e.request for spec in registry.specs() for e in spec.endpoints}


def _fake(routes: dict[str, object]):
    """A model service in-process: ``send`` for ModelClient, and the calls it received."""
    calls: list[tuple[str, dict]] = []
    request_models = _request_models()

    async def send(path: str, body: dict) -> tuple[int, str]:
        body = json.loads(json.dumps(body))  # what would cross the wire
        calls.append((path, body))
        try:
            request_models[path].model_validate(body)
        except ValidationError as err:
            return 400, json.dumps({"error": str(err)})
        out = routes.get(path)
        if out is None:
            return 404, json.dumps({"error": "no route"})
        if isinstance(out, int):
            return out, json.dumps({"error": "model unavailable"})
        if out == "timeout":
            raise TimeoutError
        return 200, json.dumps(out)

    return send, calls


def _engine(policy, routes, ledger=None):
    send, calls = _fake(routes)
    client = ModelClient("http://models", timeout=0.5, send=send, token="")
    return E.DecisionEngine(policy, client, ledger), calls


@pytest.fixture()
def engine_customer(customer_body):
    """The request customer block, opted in to push messages too."""
    return {**customer_body, "push_opt_in": True}


RETURN = {
    "return_id": 1,
    "order_id": 5,
    "customer_id": 42,
    "requested_at": "2025-03-08T10:00:00",
    "amount": 20,
}


def test_late_delivery_uses_churn_score_and_writes_ledger(
    policy, tmp_path, late_delivery, engine_customer
):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    eng, calls = _engine(
        policy,
        {"/churn/score": {"customer_id": 42, "status": "ok", "p_churn_90": 0.42, "model": "m"}},
        ledger,
    )
    req = E.OrderEventRequest.model_validate({"event": late_delivery, "customer": engine_customer})
    res = asyncio.run(eng.order_event(req))
    assert [c[0] for c in calls] == ["/churn/score"]  # only the model this decision needs
    assert calls[0][1] == {"customer_id": 42}  # the model's latest snapshot
    assert any(
        "churn risk 0.42 >= 0.30 -> x1.5 -> 150 apology points" in r for r in res.decision.reasons
    )
    assert res.balance == 100 + 150 + 100  # earn + apology + surprise tier-up gift
    again = asyncio.run(eng.order_event(req))  # a retried request awards nothing new
    assert again.balance == res.balance and not any(p["created"] for p in again.ledger)
    ledger.dispose()


@pytest.mark.parametrize("failure", [503, "timeout", {"unexpected": 1}])
def test_model_failure_falls_back_and_says_so(policy, failure, late_delivery, engine_customer):
    eng, _ = _engine(
        policy, {"/churn/score": failure, "/fraud/return": failure, "/delivery/estimate": failure}
    )
    res = asyncio.run(
        eng.order_event(
            E.OrderEventRequest.model_validate(
                {"event": late_delivery, "customer": engine_customer}
            )
        )
    )
    d = res.decision
    assert any(
        "churn model unavailable" in f and "neutral churn risk 0.15" in f for f in d.fallbacks
    )
    assert [a.points for a in d.actions if a.ledger_type == "apology"] == [100]
    ret = E.ReturnDecisionRequest.model_validate(
        {"request": RETURN, "customer": {**engine_customer, "tier": "gold"}}
    )
    r = asyncio.run(eng.return_(ret)).decision
    assert r.outcome == "refund_on_receipt" and any(
        "fraud model unavailable" in f for f in r.fallbacks
    )
    placed = E.OrderEventRequest.model_validate(
        {
            "event": {
                **late_delivery,
                "event_type": "in_transit",
                "occurred_at": "2025-03-02T08:00:00",
            },
            "customer": engine_customer,
        }
    )
    p = asyncio.run(eng.order_event(placed)).decision
    assert any("carrier's promise" in f for f in p.fallbacks) and p.messages == []


def test_no_model_service_means_documented_fallbacks(policy, late_delivery, engine_customer):
    eng = E.DecisionEngine(policy, None, None)
    res = asyncio.run(
        eng.order_event(
            E.OrderEventRequest.model_validate(
                {"event": late_delivery, "customer": engine_customer}
            )
        )
    )
    assert any("no model service configured" in f for f in res.decision.fallbacks)


def test_given_scores_skip_the_model_calls(policy, late_delivery, engine_customer):
    eng, calls = _engine(policy, {})
    req = E.OrderEventRequest.model_validate(
        {"event": late_delivery, "customer": engine_customer, "scores": {"churn_risk": 0.6}}
    )
    res = asyncio.run(eng.order_event(req))
    assert calls == [] and res.decision.fallbacks == []


def test_response_parsers_read_the_model_service_fields():
    assert parse_delivery({"stage": "checkout", "p50_days": 2, "promise_days": 4}).p90_days == 4
    assert parse_churn([{"status": "ok", "p_churn_30": 0.1, "p_churn_90": 0.3}], 90) == 0.3
    assert parse_churn({"status": "ok", "p_churn_30": 0.1, "p_churn_90": 0.3}, 30) == 0.1
    assert parse_fraud({"p_fraud": 0.7, "head": "return"}) == (0.7, None)
    assert parse_fraud({"p_fraud": 0.7, "ring_member": True}) == (0.7, True)
    assert parse_recs({"customer_id": 1, "product_ids": [3, 5], "scores": [1, 0.5]}) == [3, 5]
    with pytest.raises(ValueError, match="outside"):
        parse_churn({"status": "ok", "p_churn_90": 1.7}, 90)
    with pytest.raises(ValueError, match="unknown_customer"):
        parse_churn({"status": "unknown_customer", "customer_id": 9}, 90)
    with pytest.raises(ValueError, match="no 'p_fraud'"):
        parse_fraud({"nothing": 1})


def test_every_model_call_is_a_request_the_model_service_accepts(
    policy, late_delivery, engine_customer
):
    """The fake validates bodies with the models' request schemas: no call may be refused."""
    routes = {
        "/delivery/estimate": {"stage": "transit", "p50_days": 3, "promise_days": 5},
        "/churn/score": {"customer_id": 42, "status": "ok", "p_churn_90": 0.2},
        "/fraud/return": {"p_fraud": 0.05, "head": "return", "ring_member": False},
        "/fraud/claim": {"p_fraud": 0.05, "head": "claim", "ring_member": False},
        "/recs/recommend": {"customer_id": 42, "product_ids": [7, 8], "scores": [2.0, 1.0]},
    }
    eng, calls = _engine(policy, routes)
    lane = {"warehouse": "wh_north", "dest_region": "east", "service_level": "standard"}
    transit = {**late_delivery, "event_type": "in_transit", "occurred_at": "2025-03-02T08:00:00"}
    on_time = {**late_delivery, "promised_date": "2025-03-06"}
    ret = {**RETURN, "product_id": 93, "delivered_at": "2025-03-05T12:00:00", "reason": "damaged"}
    claim = {
        "claim_id": 2,
        "order_id": 5,
        "customer_id": 42,
        "claimed_at": "2025-03-06T10:00:00",
        "claim_type": "item_not_received",
        "amount": 80,
        "signature": False,
    }
    decisions = [
        eng.order_event(
            E.OrderEventRequest.model_validate(
                {
                    "event": {**transit, "carrier": "swiftpost"},
                    "customer": engine_customer,
                    "model_inputs": {"delivery": lane},
                }
            )
        ),
        eng.order_event(
            E.OrderEventRequest.model_validate(
                {"event": late_delivery, "customer": engine_customer}
            )
        ),
        eng.order_event(
            E.OrderEventRequest.model_validate({"event": on_time, "customer": engine_customer})
        ),
        eng.return_(
            E.ReturnDecisionRequest.model_validate({"request": ret, "customer": engine_customer})
        ),
        eng.claim(
            E.ClaimDecisionRequest.model_validate({"request": claim, "customer": engine_customer})
        ),
    ]
    results = [asyncio.run(d).decision for d in decisions]
    assert sorted(c[0] for c in calls) == sorted(routes)
    for d in results:
        assert d.fallbacks == [], d.fallbacks


def test_a_return_reason_the_models_do_not_know_is_refused(engine_customer):
    with pytest.raises(ValidationError, match="reason"):
        E.ReturnDecisionRequest.model_validate(
            {"request": {**RETURN, "reason": "too_big"}, "customer": engine_customer}
        )


def test_decisions_take_the_persisted_tier_and_say_which_was_used(
    policy, tmp_path, late_delivery, engine_customer
):
    """A stored tier wins over the caller's; without one the caller's is the fallback."""
    from ppx.rules.loyalty.tiers import review_tier

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    recs = {"/recs/recommend": {"customer_id": 42, "product_ids": [3, 4, 5]}}
    eng, _ = _engine(policy, recs, ledger)
    on_time = {**late_delivery, "delivered_at": "2025-03-04T12:00:00"}  # before its promise

    def earned(order_id: int) -> tuple[int, list[str]]:
        event = {**on_time, "order_id": order_id}
        req = E.OrderEventRequest.model_validate({"event": event, "customer": engine_customer})
        res = asyncio.run(eng.order_event(req))
        pts = sum(p["points"] for p in res.ledger if p["entry_type"] == "earn")
        return pts, res.decision.reasons

    value = on_time["order_value"]
    pts, reasons = earned(101)  # nothing stored: the caller's silver (x1.25)
    assert pts == int(value * policy.tier("silver").points_multiplier)
    assert "tier silver: as given by the caller (no persisted tier)" in reasons

    review_tier(ledger, policy, 42, 2000.0)  # the programme's own record: platinum
    pts, reasons = earned(102)
    assert pts == int(value * policy.tier("platinum").points_multiplier)
    assert "tier platinum: the customer's persisted tier" in reasons


def test_customer_facts_are_read_while_the_model_call_is_in_flight(
    policy, tmp_path, engine_customer
):
    """The return's fraud call and the persisted tier are independent: the tier is read
    while the call waits for its answer, and the decision uses both."""
    from ppx.rules.loyalty.tiers import review_tier

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    review_tier(ledger, policy, 42, 2000.0)  # stored tier: platinum
    fraud = {"/fraud/return": {"p_fraud": 0.01, "ring_member": False}}
    send, calls = _fake(fraud)
    client = ModelClient("http://models", timeout=0.5, send=send, token="")
    eng = E.DecisionEngine(policy, client, ledger)
    read = asyncio.Event()
    read_customer = eng._customer

    def customer(c):
        read.set()
        return read_customer(c)

    async def answer_after_the_read(path: str, body: dict) -> tuple[int, str]:
        # Sequential code would read the customer only after this answer: never.
        await asyncio.wait_for(read.wait(), timeout=5)
        return await send(path, body)

    eng._customer = customer
    client._send = answer_after_the_read
    ret = {**RETURN, "product_id": 93, "reason": "changed_mind"}
    req = E.ReturnDecisionRequest.model_validate({"request": ret, "customer": engine_customer})
    res = asyncio.run(eng.return_(req))
    assert [c[0] for c in calls] == ["/fraud/return"]
    assert not res.decision.fallbacks, res.decision.fallbacks  # the fraud score was used
    assert "tier platinum: the customer's persisted tier" in res.decision.reasons


def test_stage_timings_name_the_stages_of_a_decision_and_leave_it_unchanged(
    policy, tmp_path, engine_customer
):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    fraud = {"/fraud/return": {"p_fraud": 0.05, "head": "return", "ring_member": False}}
    eng, _ = _engine(policy, fraud, ledger)
    body = {"request": RETURN, "customer": engine_customer}
    untimed = asyncio.run(eng.return_(E.ReturnDecisionRequest.model_validate(body)))
    with E.stage_timings() as stages:
        timed = asyncio.run(eng.return_(E.ReturnDecisionRequest.model_validate(body)))
    assert list(stages) == ["model", "decide", "ledger"]
    assert all(ms >= 0 for ms in stages.values())
    # the same answer with or without timing (the second call replays the first)
    assert timed.decision == untimed.decision and timed.balance == untimed.balance
    with E.stage_timings() as outer:
        pass
    assert outer == {}  # nothing is timed outside a decision
    asyncio.run(eng.return_(E.ReturnDecisionRequest.model_validate(body)))
    assert outer == {}  # nor after the block has closed
