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
