"""Review points (text beats stars, rating never matters) and the points-expiring reminder."""

from __future__ import annotations

from datetime import datetime, timedelta

from ppx.rules.decisions import decide_order_event
from ppx.rules.loyalty.expiry import decide_expiry_reminder
from ppx.rules.types import OrderEvent, Scores

NOON = datetime(2026, 5, 5, 12, 0)


def test_text_review_earns_more_than_stars_whatever_the_rating(policy, customer):
    got = {}
    for text in (False, True):
        for rating in (1, 5):
            ev = OrderEvent(
                event_type="review",
                order_id=9,
                customer_id=42,
                occurred_at=NOON,
                review_id=rating,
                rating=rating,
                review_has_text=text,
            )
            d = decide_order_event(ev, customer(), Scores(), policy)
            (a,) = [x for x in d.actions if x.ledger_type == "review_bonus"]
            got[(text, rating)] = a.points
    assert got[(False, 1)] == got[(False, 5)] == policy.review.points
    assert got[(True, 1)] == got[(True, 5)] == policy.review.text_points > policy.review.points


def test_expiry_reminder_only_inside_the_window(policy, customer):
    days = policy.points.expiry.reminder_days
    c = customer()
    expires = NOON + timedelta(days=days - 2)
    d = decide_expiry_reminder(
        c, policy, NOON, 420, expires, points_to_next_reward=80, next_reward="EUR 5 off"
    )
    (m,) = d.messages
    assert m.message_type == "points_expiring"
    assert m.content["points"] == 420 and m.content["expires_on"] == expires.date().isoformat()
    assert m.content["points_to_next_reward"] == 80
    early = decide_expiry_reminder(c, policy, NOON, 420, NOON + timedelta(days=days + 3))
    assert early.messages == [] and "more than" in early.reasons[0]
    assert decide_expiry_reminder(c, policy, NOON, 0, expires).messages == []
    opted_out = decide_expiry_reminder(
        customer(opted_out_channels=["email", "push", "sms"]),
        policy,
        NOON,
        420,
        expires,
    )
    assert opted_out.messages == [] and opted_out.suppressed


def test_daily_pass_reminds_once_and_issues_the_birthday_gift(tmp_path, policy, customer):
    import asyncio
    from datetime import date

    from ppx.rules.engine import DailyItem, DecisionEngine
    from ppx.rules.ledger import Ledger
    from ppx.rules.loyalty.expiry import add_months

    ledger = Ledger(f"sqlite:///{tmp_path / 'l.db'}")
    earned = datetime(2025, 6, 1, 9, 0)
    ledger.award(42, 250, "earn:42:1", order_id=1, at=earned)
    eng = DecisionEngine(policy, None, ledger)
    c = customer(birth_date=date(1990, 5, 1))
    lapse = add_months(earned, policy.points.expiry.inactivity_months)
    remind = lapse - timedelta(days=policy.points.expiry.reminder_days)

    def types_on(day: datetime):
        res = asyncio.run(eng.daily(DailyItem(customer=c, now=day)))
        return res.decision

    on_day = types_on(remind.replace(hour=10))
    (m,) = [m for m in on_day.messages if m.message_type == "points_expiring"]
    assert m.content["points"] == 250 and m.content["expires_on"] == lapse.date().isoformat()
    assert m.content["points_to_next_reward"] == 50  # free shipping costs 300
    next_day = types_on(remind.replace(hour=10) + timedelta(days=1))
    assert "points_expiring" not in next_day.message_types()
    bday = types_on(datetime(2026, 5, 1, 10, 0))
    assert any(r.startswith("birthday: birthday gift free_shipping") for r in bday.reasons)
    (msg,) = [m for m in bday.messages if m.message_type == "birthday"]
    assert msg.content["gift"]["reward"] == "Free shipping"
    assert msg.content["gift"]["voucher_code"].startswith("PPX-")
