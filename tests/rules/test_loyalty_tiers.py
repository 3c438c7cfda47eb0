"""Tiers: entry at once, held until review, retained or downgraded, with history; gifts."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta

from ppx.rules.ledger import Ledger
from ppx.rules.loyalty import loyalty_summary
from ppx.rules.loyalty.expiry import add_months
from ppx.rules.loyalty.gifts import yearly_gifts
from ppx.rules.loyalty.tiers import review_tier, tier_history

T0 = datetime(2026, 2, 1, 9, 0)


def test_tier_entry_retention_and_downgrade_with_history(ledger, policy):
    cid = 20_000_000 + uuid.uuid4().int % 1_000_000_000
    assert review_tier(ledger, policy, cid, 250, T0).change == "entry"  # silver
    up = review_tier(ledger, policy, cid, 650, T0 + timedelta(days=30))
    assert (up.change, up.tier, up.previous) == ("upgrade", "gold", "silver")
    assert up.review_at == add_months(T0 + timedelta(days=30), 12)
    # Spend falls, but gold is held until its review.
    held = review_tier(ledger, policy, cid, 100, T0 + timedelta(days=200))
    assert (held.change, held.tier) == ("unchanged", "gold")
    # At the review: 480 is under gold's entry (600) but over its retention (450).
    kept = review_tier(ledger, policy, cid, 480, up.review_at)
    assert (kept.change, kept.tier) == ("retained", "gold")
    assert kept.since == up.since and kept.review_at == add_months(up.review_at, 12)
    # Next review: 160 keeps silver (retention 150) but not gold.
    down = review_tier(ledger, policy, cid, 160, kept.review_at)
    assert (down.change, down.tier) == ("downgrade", "silver")
    assert "below gold's retention threshold 450" in down.reason
    hist = tier_history(ledger, cid)
    assert [(h["change"], h["to_tier"]) for h in hist] == [
        ("entry", "silver"),
        ("upgrade", "gold"),
        ("retained", "gold"),
        ("downgrade", "silver"),
    ]
    assert loyalty_summary(ledger, policy, cid, now=kept.review_at).tier == "silver"


def test_birthday_and_anniversary_gifts_once_per_year(tmp_path, policy):
    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    today = date(2026, 6, 15)
    kw = dict(tier="silver", birth_date=date(1990, 6, 15), signup_at=datetime(2024, 6, 15, 8))
    first = yearly_gifts(ledger, policy, 9, today, **kw)
    again = yearly_gifts(ledger, policy, 9, today, **kw)
    assert [k for k, _, _ in first] == ["birthday", "anniversary"]
    assert all(v.created for _, v, _ in first) and not any(v.created for _, v, _ in again)
    assert [v.voucher_code for _, v, _ in first] == [v.voucher_code for _, v, _ in again]
    assert first[0][1].reward_id == policy.birthday.reward and first[0][1].points == 0
    bronze = yearly_gifts(ledger, policy, 10, today, **{**kw, "tier": "bronze"})
    assert bronze[0][1] is None and "needs tier silver" in bronze[0][2]
    assert ledger.balance(9) == 0  # gifts cost no points


def test_engine_persists_spend_upgrades_and_surprise_tier_ups(tmp_path, policy, customer):
    import asyncio

    from ppx.rules.engine import DailyItem, DecisionEngine, OrderEventRequest
    from ppx.rules.types import OrderEvent, Scores

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    eng = DecisionEngine(policy, None, ledger)
    ev = OrderEvent(
        event_type="delivered",
        order_id=3,
        customer_id=42,
        occurred_at=T0,
        order_value=300,
        delivered_at=T0,
    )
    c = customer(tier="silver", spend_12m=350.0)
    res = asyncio.run(eng.order_event(OrderEventRequest(event=ev, customer=c)))
    assert res.decision.actions_of("set_tier")[0].tier == "gold"
    assert [(h["change"], h["to_tier"], h["spend_12m"]) for h in tier_history(ledger, 42)] == [
        ("entry", "gold", 650.0)
    ]
    # A valuable silver customer at risk: a surprise tier-up, held until its end date.
    rule = policy.surprise_tier_up
    c2 = customer(customer_id=43, tier="silver", spend_12m=rule.min_spend_12m + 50)
    item = DailyItem(customer=c2, now=T0, scores=Scores(churn_risk=rule.min_churn_risk + 0.1))
    d = asyncio.run(eng.daily(item)).decision
    (act,) = d.actions_of("set_tier")
    hist = tier_history(ledger, 43)
    assert [(h["change"], h["to_tier"]) for h in hist] == [("surprise", "gold")]
    assert loyalty_summary(ledger, policy, 43, now=T0).tier_review_on == act.until.date()
    # At its end the retention rule decides: 350 is below gold's 450 -> silver.
    back = review_tier(ledger, policy, 43, rule.min_spend_12m + 50, act.until)
    assert (back.change, back.tier) == ("downgrade", "silver")
