"""Returns and exchanges: exchange, store credit, refund; ledger and inventory stay consistent."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from ppx.rules.engine import DecisionEngine
from ppx.rules.ledger import Ledger
from ppx.rules.returns_flow import ResolutionError, ReturnChoice
from ppx.rules.returns_flow.desk import ReceiveRequest, ResolveRequest, ReturnsDesk
from ppx.rules.returns_flow.store import ReturnsStore
from ppx.rules.types import ReturnEvent, Scores

NOW = datetime(2025, 3, 10, 12, 0)
TRUSTED = Scores(fraud_prob=0.05, ring_member=False)


@pytest.fixture()
def desk(tmp_path, policy):
    ledger = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    store = ReturnsStore(ledger, policy)
    d = ReturnsDesk(DecisionEngine(policy, None, ledger), store, clock=lambda: NOW)
    # order 5 (100.00) earned its points on delivery: gold x1.5 -> 150
    ledger.award(42, 150, "earn:5", "earn", order_id=5)
    ledger.award(43, 100, "earn:6", "earn", order_id=6)
    return d


def _req(return_id=1, order_id=5, customer_id=42, amount=100.0, **kw):
    return ReturnEvent(
        return_id=return_id,
        order_id=order_id,
        customer_id=customer_id,
        product_id=7,
        requested_at=datetime(2025, 3, 8, 10, 0),
        delivered_at=datetime(2025, 3, 5, 10, 0),
        amount=amount,
        **kw,
    )


def resolve(d, customer, scores=TRUSTED, **choice):
    req = _req(customer_id=customer.customer_id, **choice.pop("req", {}))
    body = ResolveRequest(
        request=req, customer=customer, scores=scores, choice=ReturnChoice(**choice)
    )
    return asyncio.run(d.resolve(body))


def receive(d, return_id=1, inspection=None):
    return d.receive(return_id, ReceiveRequest(inspection=inspection))["resolution"]


def test_trusted_exchange_ships_ahead_and_ledger_and_inventory_agree(desk, customer):
    gold = customer(tier="gold", spend_12m=900)
    ledger = desk.store.ledger
    exchange = {"product_id": 7, "variant": "L", "unit_price": 100.0}
    out = resolve(desk, gold, resolution="exchange", variant="M", exchange=exchange)
    res = out["resolution"]
    assert res["outcome"] == "exchange_shipped_ahead" and res["status"] == "open"
    assert any("ships now, before the return arrives" in r for r in out["decision"]["reasons"])
    assert res["inventory"] == [
        {"event_type": "exchange_shipped", "product_id": 7, "variant": "L", "quantity": -1}
    ]
    # the same value was exchanged: the order keeps its points
    assert res["points_reversed"] == 0 and ledger.balance(42) == 150
    # a retried request changes nothing (and does not ask the model again)
    again = resolve(desk, gold, resolution="exchange", variant="M", exchange=exchange)
    assert again["resolution"]["replayed"] and again["resolution"]["inventory"] == res["inventory"]
    done = receive(desk)
    assert done["status"] == "closed" and done["item_received"]
    assert [(e["variant"], e["quantity"]) for e in done["inventory"]] == [("L", -1), ("M", 1)]
    assert desk.store.stock_movement(7, "L") == -1 and desk.store.stock_movement(7, "M") == 1
    assert desk.store.stock_movement(7) == 0  # one out, one back
    assert receive(desk)["replayed"] and desk.store.stock_movement(7) == 0
    assert ledger.balance(42) == 150 and ledger.count() == 2


def test_cheaper_exchange_refunds_the_difference_and_its_points(desk, customer):
    gold = customer(tier="gold", spend_12m=900)
    exchange = {"product_id": 9, "unit_price": 80.0}
    res = resolve(desk, gold, resolution="exchange", exchange=exchange)["resolution"]
    assert res["refunded"] == 20.0 and res["points_reversed"] == 30  # 20.00 x 1.5
    assert desk.store.ledger.balance(42) == 120
    res = receive(desk)
    assert res["points_reversed"] == 30 and desk.store.ledger.balance(42) == 120
    assert desk.store.stock_movement(9) == -1 and desk.store.stock_movement(7) == 1


def test_untrusted_exchange_waits_for_the_item(desk, customer):
    regular = customer(customer_id=43, tier="bronze", spend_12m=100)
    exchange = {"product_id": 7, "variant": "L", "unit_price": 100.0}
    res = resolve(
        desk, regular, resolution="exchange", variant="M", exchange=exchange, req={"order_id": 6}
    )["resolution"]
    # 100.00 is above the regular instant limit: reserved now, shipped on receipt
    assert res["outcome"] == "exchange_on_receipt"
    assert [e["event_type"] for e in res["inventory"]] == ["exchange_reserved"]
    res = receive(desk)
    assert [e["quantity"] for e in res["inventory"]] == [-1, 1] and res["status"] == "closed"
    assert desk.store.ledger.balance(43) == 100


def test_store_credit_with_bonus_reverses_the_order_points(desk, customer):
    gold = customer(tier="gold", spend_12m=900)
    res = resolve(desk, gold, resolution="store_credit")["resolution"]
    # 100.00 + 10 % bonus (under the 25.00 cap)
    assert res["outcome"] == "store_credit_instant" and res["credited"] == 110.0
    assert res["store_credit_balance"] == 110.0
    assert res["points_reversed"] == 150 and desk.store.ledger.balance(42) == 0
    res = receive(desk)
    assert res["store_credit_balance"] == 110.0 and res["points_reversed"] == 150
    assert desk.store.stock_movement(7) == 1


def test_instant_refund_only_for_trusted_customers(desk, customer):
    gold = customer(tier="gold", spend_12m=900)
    ring = Scores(fraud_prob=0.05, ring_member=True)
    risky = Scores(fraud_prob=0.8, ring_member=False)
    # a ring member, a high fraud risk, a serial returner: no instant anything
    for i, (cust, sc) in enumerate(
        [(gold, ring), (gold, risky), (customer(tier="gold", returns_12m=5), TRUSTED)], start=10
    ):
        res = resolve(desk, cust, sc, resolution="refund", req={"return_id": i})["resolution"]
        assert res["outcome"] != "instant_refund" and res["refunded"] == 0
        ex = {"product_id": 8, "unit_price": 100.0}
        res = resolve(
            desk, cust, sc, resolution="exchange", exchange=ex, req={"return_id": i + 10}
        )["resolution"]
        assert res["outcome"] != "exchange_shipped_ahead"
        assert "exchange_shipped" not in [e["event_type"] for e in res["inventory"]]
    assert desk.store.ledger.balance(42) == 150
    # the trusted one gets the instant refund, with the points reversed now
    res = resolve(desk, gold, resolution="refund")["resolution"]
    assert res["outcome"] == "instant_refund" and res["refunded"] == 100.0
    assert res["points_reversed"] == 150 and desk.store.ledger.balance(42) == 0


def test_inspection_holds_the_resolution(desk, customer):
    gold = customer(tier="gold", spend_12m=900)
    risky = Scores(fraud_prob=0.8, ring_member=False)
    res = resolve(desk, gold, risky, resolution="store_credit")["resolution"]
    assert res["outcome"] == "inspect" and res["status"] == "awaiting_inspection"
    with pytest.raises(ResolutionError, match="passed or failed"):
        receive(desk)
    res = receive(desk, inspection="failed")
    assert res["status"] == "rejected" and res["credited"] == 0 and res["inventory"] == []
    assert desk.store.ledger.balance(42) == 150
    # another return, refund on receipt after a passed inspection: points go then
    res = resolve(desk, gold, risky, resolution="refund", req={"return_id": 2})["resolution"]
    res = receive(desk, 2, inspection="passed")
    assert res["refunded"] == 100.0 and res["points_reversed"] == 150


def test_refused_resolutions(desk, customer, policy):
    gold = customer(tier="gold", spend_12m=900)
    with pytest.raises(ResolutionError, match="max_exchange_difference"):
        resolve(desk, gold, resolution="exchange", exchange={"product_id": 8, "unit_price": 500})
    with pytest.raises(ResolutionError, match="needs exchange"):
        resolve(desk, gold, resolution="exchange")
    with pytest.raises(ResolutionError, match="same product and variant"):
        resolve(
            desk,
            gold,
            resolution="exchange",
            variant="M",
            exchange={"product_id": 7, "variant": "M", "unit_price": 100},
        )
    only_refunds = policy.returns.resolutions.model_copy(update={"allowed": ["refund"]})
    desk.engine.policy = policy.model_copy(
        update={"returns": policy.returns.model_copy(update={"resolutions": only_refunds})}
    )
    with pytest.raises(ResolutionError, match="not offered"):
        resolve(desk, gold, resolution="store_credit")
    assert desk.store.ledger.balance(42) == 150


@pytest.mark.postgres
def test_exchange_keeps_ledger_and_inventory_consistent_on_postgres(postgres_url, policy, customer):
    from concurrent.futures import ThreadPoolExecutor

    ledger = Ledger(postgres_url, pool_size=16)
    d = ReturnsDesk(DecisionEngine(policy, None, ledger), ReturnsStore(ledger, policy), lambda: NOW)
    ledger.award(4343, 150, "earn:9005", "earn", order_id=9005)
    gold = customer(customer_id=4343, tier="gold", spend_12m=900)
    req = ReturnEvent(
        return_id=9005,
        order_id=9005,
        customer_id=4343,
        product_id=907,
        requested_at=datetime(2025, 3, 8, 10, 0),
        delivered_at=datetime(2025, 3, 5, 10, 0),
        amount=100.0,
    )
    choice = ReturnChoice(
        resolution="exchange",
        variant="M",
        exchange={"product_id": 907, "variant": "L", "unit_price": 90.0},
    )
    body = ResolveRequest(request=req, customer=gold, scores=TRUSTED, choice=choice)
    with ThreadPoolExecutor(6) as pool:  # duplicate requests at once land once
        outs = list(pool.map(lambda _: asyncio.run(d.resolve(body)), range(6)))
    assert sum(not o["resolution"]["replayed"] for o in outs) == 1
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda _: receive(d, 9005), range(6)))
    res = d.store.summary(9005)
    assert [(e["variant"], e["quantity"]) for e in res["inventory"]] == [("L", -1), ("M", 1)]
    assert res["points_reversed"] == 15 and ledger.balance(4343) == 135  # 10.00 x 1.5
    ledger.dispose()


def test_a_fully_returned_order_gives_back_the_voucher_spent_on_it(desk, customer, policy):
    """Store credit or refund for the whole order: its voucher's points come back, once."""
    from ppx.rules.loyalty.redemption import redeem_reward, redemptions_of

    ledger = desk.store.ledger
    reward = min((r for r in policy.rewards if r.min_tier is None), key=lambda r: r.points)
    ledger.award(42, 2 * reward.points, "gift:42", "earn")  # not tied to an order
    ledger.award(42, 40, "earn:8", "earn", order_id=8)  # order 8 (40.00 x 1) for the partial
    v5 = redeem_reward(ledger, policy, 42, reward.id, "redeem:5", order_id=5)
    v8 = redeem_reward(ledger, policy, 42, reward.id, "redeem:8", order_id=8)
    start = ledger.balance(42)
    gold = customer(tier="gold", spend_12m=900)

    res = resolve(desk, gold, resolution="store_credit")["resolution"]  # all of order 5
    assert res["points_reversed"] == 150
    assert res["vouchers_returned"] == [
        {"redemption_id": v5.redemption_id, "reward_id": reward.id, "points": reward.points}
    ]
    assert ledger.balance(42) == start - 150 + reward.points
    # a partial return of order 8 (half of it) leaves its voucher spent
    half = resolve(
        desk, gold, resolution="refund", req={"return_id": 2, "order_id": 8, "amount": 20}
    )
    assert half["resolution"]["vouchers_returned"] == []
    status = {r["redemption_id"]: r["status"] for r in redemptions_of(ledger, 42)}
    assert status == {v5.redemption_id: "reversed", v8.redemption_id: "issued"}
    # settling the same return again changes nothing
    again = resolve(desk, gold, resolution="store_credit")["resolution"]
    assert again["replayed"] and again["vouchers_returned"] == res["vouchers_returned"]
    assert ledger.balance(42) == start - 150 + reward.points - 30  # 20.00 x 1.5 reversed
