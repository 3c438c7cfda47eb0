"""One test per decision the rules layer makes: points, tiers, referral, review, apology,
surprise tier-up, order and delay notices, thank-you, anniversary, birthday, win-back,
replenishment, returns and claims, and the fallbacks when a model call fails."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from ppx.rules.decisions import decide_claim, decide_daily, decide_order_event, decide_return
from ppx.rules.types import (
    ClaimEvent,
    DeliveryEstimate,
    OrderEvent,
    ReplenishmentItem,
    ReturnEvent,
    Scores,
)

NOON = datetime(2025, 6, 10, 12, 0)


def _delivered(late_days: int = 0, value: float = 80.0, **kw) -> OrderEvent:
    promised = date(2025, 6, 10)
    delivered = datetime(2025, 6, 10 + late_days, 12, 0)
    return OrderEvent(
        event_type="delivered",
        order_id=100,
        customer_id=42,
        occurred_at=delivered,
        ordered_at=datetime(2025, 6, 6, 9, 0),
        order_value=value,
        promised_date=promised,
        delivered_at=delivered,
        **kw,
    )


def _award(decision, ledger_type):
    return [a for a in decision.actions if a.ledger_type == ledger_type]


def test_points_scale_with_tier(policy, customer):
    bronze = decide_order_event(
        _delivered(), customer(tier="bronze", spend_12m=10), Scores(), policy
    )
    gold = decide_order_event(_delivered(), customer(tier="gold", spend_12m=700), Scores(), policy)
    assert _award(bronze, "earn")[0].points == 80
    assert _award(gold, "earn")[0].points == 120  # 1.5x for gold
    assert _award(gold, "earn")[0].idempotency_key == "earn:100"
    assert "gold multiplier 1.5 -> 120 points" in _award(gold, "earn")[0].reason


def test_tier_upgrade_when_spend_crosses_threshold(policy, customer):
    d = decide_order_event(
        _delivered(value=100), customer(tier="silver", spend_12m=550), Scores(), policy
    )
    tiers = d.actions_of("set_tier")
    assert tiers and tiers[0].tier == "gold" and tiers[0].until is None
    assert "tier_upgrade" in d.message_types()


def test_referral_rewards_both_sides(policy, customer):
    ev = OrderEvent(
        event_type="referral", order_id=5, customer_id=42, occurred_at=NOON, referee_id=77
    )
    d = decide_order_event(ev, customer(), Scores(), policy)
    awards = _award(d, "referral_bonus")
    assert {(a.customer_id, a.points) for a in awards} == {(None, 200), (77, 100)}
    assert {a.idempotency_key for a in awards} == {"referral:77", "referee:77"}


def test_review_bonus_once_per_order_whatever_the_rating(policy, customer):
    for rating in (1, 5):
        ev = OrderEvent(
            event_type="review",
            order_id=9,
            customer_id=42,
            occurred_at=NOON,
            review_id=rating,
            rating=rating,
        )
        d = decide_order_event(ev, customer(), Scores(), policy)
        assert _award(d, "review_bonus")[0].points == 50
        assert _award(d, "review_bonus")[0].idempotency_key == "review:9"


def test_apology_points_scale_with_lateness_and_churn_risk(policy, customer):
    c = customer(spend_12m=100)  # below the tier-up spend: apology only
    on_time = decide_order_event(_delivered(0), c, Scores(churn_risk=0.6), policy)
    assert not _award(on_time, "apology")
    low = decide_order_event(_delivered(3), c, Scores(churn_risk=0.1), policy)
    high = decide_order_event(_delivered(3), c, Scores(churn_risk=0.42), policy)
    later = decide_order_event(_delivered(7), c, Scores(churn_risk=0.42), policy)
    pts = [_award(d, "apology")[0].points for d in (low, high, later)]
    assert pts == [100, 150, 300]
    assert "late by 3 day(s)" in _award(high, "apology")[0].reason
    assert (
        "churn risk 0.42 >= 0.30 -> x1.5 -> 150 apology points" in _award(high, "apology")[0].reason
    )
    assert "apology" in high.message_types() and "thank_you" not in high.message_types()


def test_lost_parcel_gets_apology(policy, customer):
    ev = OrderEvent(event_type="lost", order_id=3, customer_id=42, occurred_at=NOON)
    d = decide_order_event(ev, customer(spend_12m=50), Scores(churn_risk=0.55), policy)
    assert _award(d, "apology")[0].points == 400  # 200 x 2.0, at the cap


def test_surprise_tier_up_for_valuable_customer_at_risk_only(policy, customer):
    valuable = customer(tier="silver", spend_12m=450)
    d = decide_order_event(_delivered(2), valuable, Scores(churn_risk=0.45), policy)
    up = d.actions_of("set_tier")
    assert up and up[0].tier == "gold" and up[0].until is not None
    assert "surprise tier-up silver -> gold" in up[0].reason
    # Low value, or low risk, or a recent surprise: no tier-up.
    assert not decide_order_event(
        _delivered(2), customer(spend_12m=100), Scores(churn_risk=0.45), policy
    ).actions_of("set_tier")
    assert not decide_order_event(
        _delivered(2), valuable, Scores(churn_risk=0.1), policy
    ).actions_of("set_tier")
    recent = customer(tier="silver", spend_12m=450, last_surprise_tier_up_at=datetime(2025, 3, 1))
    assert not decide_order_event(
        _delivered(2), recent, Scores(churn_risk=0.45), policy
    ).actions_of("set_tier")
    # The daily pass finds the same customer without a late delivery.
    daily = decide_daily(valuable, NOON, Scores(churn_risk=0.45), policy)
    assert daily.actions_of("set_tier")


def _in_flight(event_type: str, occurred_at: datetime, promised: date) -> OrderEvent:
    return OrderEvent(
        event_type=event_type,
        order_id=1,
        customer_id=42,
        occurred_at=occurred_at,
        ordered_at=datetime(2025, 6, 6, 9),
        promised_date=promised,
    )


def _with_estimate(ev, customer, policy, p50_days, p90_days):
    scores = Scores(delivery=DeliveryEstimate(p50_days=p50_days, p90_days=p90_days))
    return decide_order_event(ev, customer(), scores, policy)


def test_order_confirmation_carries_the_model_estimate(policy, customer):
    ev = _in_flight("placed", datetime(2025, 6, 6, 9), date(2025, 6, 10))
    (m,) = _with_estimate(ev, customer, policy, 2.5, 3.4).messages
    assert (
        m.message_type == "order_confirmation" and m.content["estimated_delivery"] == "2025-06-08"
    )


def test_proactive_delay_notice_when_estimate_exceeds_promise(policy, customer):
    ev = _in_flight("in_transit", datetime(2025, 6, 8, 10), date(2025, 6, 8))
    late = _with_estimate(ev, customer, policy, 4.2, 6)
    assert late.message_types() == ["delay_notice"]
    on_time = _with_estimate(ev, customer, policy, 1.5, 2)
    assert on_time.messages == []
    again = ev.model_copy(update={"delay_notice_sent": True})
    assert _with_estimate(again, customer, policy, 4.2, 6).messages == []


def test_thank_you_with_recommendations(policy, customer):
    d = decide_order_event(_delivered(0), customer(), Scores(recommendations=[7, 8, 9, 10]), policy)
    ty = [m for m in d.messages if m.message_type == "thank_you"][0]
    assert ty.content["recommendations"] == [7, 8, 9]
    rr = [m for m in d.messages if m.message_type == "review_request"][0]
    assert (rr.send_at - ty.send_at).days >= 2  # review request comes days later


def test_birthday_and_anniversary(policy, customer):
    c = customer(tier="silver", birth_date=date(1990, 6, 10), signup_at=datetime(2023, 6, 10, 8))
    d = decide_daily(c, NOON, Scores(churn_risk=0.05), policy)
    assert _award(d, "birthday_bonus")[0].points == 100
    assert _award(d, "anniversary_bonus")[0].idempotency_key == "anniversary:42:2025"
    # One marketing message a day: the anniversary message waits, its points do not.
    assert d.message_types() == ["birthday"]
    assert any("daily marketing cap" in s.reason for s in d.suppressed)
    bronze = customer(tier="bronze", spend_12m=20, birth_date=date(1990, 6, 10))
    assert not _award(decide_daily(bronze, NOON, Scores(churn_risk=0.05), policy), "birthday_bonus")
    leap = customer(birth_date=date(2000, 2, 29))
    assert _award(
        decide_daily(leap, datetime(2025, 2, 28, 12), Scores(churn_risk=0.05), policy),
        "birthday_bonus",
    )


def test_win_back_for_lapsed_customer_at_risk(policy, customer):
    lapsed = customer(last_order_at=datetime(2025, 3, 1))
    d = decide_daily(lapsed, NOON, Scores(churn_risk=0.35), policy)
    assert d.message_types() == ["win_back"] and _award(d, "win_back_bonus")[0].points == 150
    assert not decide_daily(lapsed, NOON, Scores(churn_risk=0.05), policy).messages
    recent = customer(last_order_at=datetime(2025, 6, 1))
    assert (
        not decide_daily(recent, NOON, Scores(churn_risk=0.9), policy)
        .message_types()
        .count("win_back")
    )
    cooled = customer(last_order_at=datetime(2025, 3, 1), last_win_back_at=datetime(2025, 5, 1))
    assert (
        "win_back"
        not in decide_daily(cooled, NOON, Scores(churn_risk=0.35), policy).message_types()
    )


def test_replenishment_reminder(policy, customer):
    c = customer(replenishment_due=[ReplenishmentItem(product_id=12, due_at=datetime(2025, 6, 12))])
    d = decide_daily(c, NOON, Scores(churn_risk=0.05, recommendations=[12, 30]), policy)
    assert d.message_types() == ["replenishment_reminder"]
    assert d.messages[0].content["product_ids"][0] == 12
    not_yet = customer(
        replenishment_due=[ReplenishmentItem(product_id=12, due_at=datetime(2025, 6, 30))]
    )
    assert decide_daily(not_yet, NOON, Scores(churn_risk=0.05), policy).messages == []


def _return(amount=60.0, **kw):
    return ReturnEvent(
        return_id=1,
        order_id=100,
        customer_id=42,
        requested_at=NOON,
        delivered_at=datetime(2025, 6, 1),
        amount=amount,
        **kw,
    )


def test_returning_vip_with_clean_history_gets_instant_refund(policy, customer):
    vip = customer(tier="gold", spend_12m=900, orders_12m=20, returns_12m=2)
    d = decide_return(_return(), vip, Scores(fraud_prob=0.05, ring_member=False), policy)
    assert d.outcome == "instant_refund"
    assert d.points < 0 and d.actions_of("reverse_points")[0].idempotency_key.startswith(
        "reversal:100"
    )
    assert "clean history" in d.actions_of("instant_refund")[0].reason
    # The same request from a regular customer above the instant limit waits for receipt.
    assert (
        decide_return(
            _return(), customer(), Scores(fraud_prob=0.05, ring_member=False), policy
        ).outcome
        == "refund_on_receipt"
    )


def test_ring_member_and_high_risk_get_inspection(policy, customer):
    vip = customer(tier="gold", spend_12m=900, orders_12m=20)
    ring = decide_return(_return(), vip, Scores(fraud_prob=0.05, ring_member=True), policy)
    assert ring.outcome == "inspect" and "fraud ring" in ring.reasons[0]
    risky = decide_return(_return(), customer(), Scores(fraud_prob=0.8, ring_member=False), policy)
    assert risky.outcome == "inspect" and "0.80 >= 0.50" in risky.actions_of("inspect")[0].reason
    serial = customer(tier="gold", spend_12m=900, orders_12m=10, returns_12m=6)
    assert (
        decide_return(_return(), serial, Scores(fraud_prob=0.1, ring_member=False), policy).outcome
        == "refund_on_receipt"
    )
    late = _return().model_copy(update={"delivered_at": datetime(2025, 4, 1)})
    assert (
        decide_return(late, vip, Scores(fraud_prob=0.1, ring_member=False), policy).outcome
        == "manual_review"
    )


def _claim(amount=45.0, status="delivered"):
    return ClaimEvent(
        claim_id=3,
        order_id=100,
        customer_id=42,
        claimed_at=NOON,
        claim_type="item_not_received",
        amount=amount,
        carrier_status=status,
    )


def test_claims_pay_honest_shoppers_fast(policy, customer):
    honest = decide_claim(_claim(), customer(), Scores(fraud_prob=0.05, ring_member=False), policy)
    assert honest.outcome == "fast_payout"
    assert (
        decide_claim(
            _claim(), customer(), Scores(fraud_prob=0.6, ring_member=False), policy
        ).outcome
        == "investigate"
    )
    assert (
        decide_claim(
            _claim(), customer(), Scores(fraud_prob=0.05, ring_member=True), policy
        ).outcome
        == "investigate"
    )
    assert (
        decide_claim(
            _claim(400), customer(), Scores(fraud_prob=0.05, ring_member=False), policy
        ).outcome
        == "standard_claim_review"
    )
    # Carrier-confirmed loss: pay now, whatever the model says (and without calling it).
    assert decide_claim(_claim(400, "lost"), customer(), Scores(), policy).outcome == "fast_payout"


def test_model_failures_use_documented_fallbacks(policy, customer):
    errs = {
        "delivery": "timeout after 0.5 s",
        "churn": "HTTP 503",
        "fraud": "connection refused",
        "recs": "HTTP 503",
    }
    ev = OrderEvent(
        event_type="in_transit",
        order_id=1,
        customer_id=42,
        occurred_at=datetime(2025, 6, 8, 10),
        ordered_at=datetime(2025, 6, 6, 9),
        promised_date=date(2025, 6, 8),
    )
    d = decide_order_event(ev, customer(), Scores(errors=errs), policy)
    assert d.messages == []  # the carrier's promise predicts no delay
    assert any(
        "delivery model unavailable (timeout after 0.5 s)" in f and "carrier's promise" in f
        for f in d.fallbacks
    )
    late = decide_order_event(_delivered(3), customer(spend_12m=100), Scores(errors=errs), policy)
    assert _award(late, "apology")[0].points == 100  # neutral risk 0.15: no churn scaling
    assert any("neutral churn risk 0.15" in f for f in late.fallbacks)
    ret = decide_return(
        _return(20), customer(tier="gold", spend_12m=900), Scores(errors=errs), policy
    )
    assert ret.outcome == "refund_on_receipt" and any(
        "neutral fraud risk" in f for f in ret.fallbacks
    )
    ty = decide_order_event(_delivered(0), customer(), Scores(errors=errs), policy)
    assert any("without recommendations" in f for f in ty.fallbacks)


def test_bad_inputs_are_named(policy, customer):
    with pytest.raises(ValueError, match="tier 'diamond'"):
        decide_order_event(_delivered(), customer(tier="diamond"), Scores(), policy)
    with pytest.raises(ValueError, match="does not match"):
        decide_order_event(_delivered(), customer(customer_id=7), Scores(), policy)
    with pytest.raises(ValueError, match="refund_amount"):
        decide_order_event(
            _delivered().model_copy(update={"event_type": "refunded"}), customer(), Scores(), policy
        )
    with pytest.raises(ValueError, match="churn_risk"):
        Scores(churn_risk=1.5)
