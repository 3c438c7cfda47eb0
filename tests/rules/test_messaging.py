"""Messaging guarantees: opted-out channels are never used, caps and quiet hours hold."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest

from ppx.rules.decisions import decide_daily, decide_order_event
from ppx.rules.messaging import as_sent, in_quiet_hours
from ppx.rules.types import (
    CustomerContext,
    DeliveryEstimate,
    OrderEvent,
    ReplenishmentItem,
    Scores,
)


def _local_in_quiet(policy, customer, t: datetime) -> bool:
    start, end = policy.messages.quiet_hours.window()
    return in_quiet_hours(t + timedelta(minutes=customer.utc_offset_minutes), start, end)


def test_caps_and_quiet_hours_hold_over_a_season(policy, customer):
    """Replay 120 days of noisy daily triggers and deliveries for one customer."""
    rng = random.Random(5)
    c = customer(
        tier="silver",
        spend_12m=150,
        utc_offset_minutes=-300,
        last_order_at=datetime(2025, 1, 1),
        birth_date=datetime(1990, 2, 14).date(),
    )
    sent = []
    t0 = datetime(2025, 2, 1)
    for day in range(120):
        for _ in range(3):
            now = t0 + timedelta(days=day, hours=rng.uniform(0, 24))
            c = c.model_copy(
                update={
                    "recent_messages": [as_sent(m) for m in sent],
                    "replenishment_due": [ReplenishmentItem(product_id=3, due_at=now)],
                    "last_order_at": now - timedelta(days=rng.choice([5, 90])),
                }
            )
            if rng.random() < 0.5:
                d = decide_daily(c, now, Scores(churn_risk=0.5, recommendations=[1]), policy)
            else:
                ev = OrderEvent(
                    event_type="delivered",
                    order_id=day * 10 + rng.randint(0, 9),
                    customer_id=42,
                    occurred_at=now,
                    ordered_at=now - timedelta(days=3),
                    order_value=20,
                    promised_date=now.date(),
                    delivered_at=now,
                )
                d = decide_order_event(ev, c, Scores(churn_risk=0.1, recommendations=[1]), policy)
            sent += d.messages
    marketing = sorted(m.send_at for m in sent if m.category == "marketing")
    assert len(marketing) > 20, "the scenario must actually exercise the caps"
    caps = policy.messages.caps
    local_days = {}
    for t in marketing:
        day = (t + timedelta(minutes=c.utc_offset_minutes)).date()
        local_days[day] = local_days.get(day, 0) + 1
    assert max(local_days.values()) <= caps.per_day
    for i, t in enumerate(marketing):  # every rolling 7-day window
        assert sum(1 for u in marketing[i:] if u - t < timedelta(days=7)) <= caps.per_week
    for m in sent:
        if policy.messages.catalogue[m.message_type].respect_quiet_hours:
            assert not _local_in_quiet(policy, c, m.send_at), m


def test_opted_out_channel_is_never_used(policy, customer):
    """Hard opt-outs block everything; consent gates marketing and service messages."""
    rng = random.Random(1)
    free = set(policy.messages.transactional_without_consent)
    for trial in range(300):
        opts = {ch: rng.random() < 0.5 for ch in ("email", "sms", "push")}
        hard = [ch for ch in ("email", "sms", "push") if rng.random() < 0.3]
        c = customer(
            email_opt_in=opts["email"],
            sms_opt_in=opts["sms"],
            push_opt_in=opts["push"],
            opted_out_channels=hard,
            preferred_channels=rng.sample(["email", "sms", "push"], 2),
            last_order_at=datetime(2025, 1, 1),
            birth_date=datetime(1990, 6, 10).date(),
        )
        now = datetime(2025, 6, 10, 12)
        ev = OrderEvent(
            event_type=rng.choice(["placed", "shipped", "delivered"]),
            order_id=trial + 1,
            customer_id=42,
            occurred_at=now,
            ordered_at=now - timedelta(days=6),
            order_value=30,
            promised_date=(now - timedelta(days=2)).date(),
            delivered_at=now,
        )
        for d in (
            decide_order_event(ev, c, Scores(churn_risk=0.4), policy),
            decide_daily(c, now, Scores(churn_risk=0.4), policy),
        ):
            for m in d.messages:
                assert m.channel not in hard, (hard, m)
                if m.category != "marketing":
                    assert opts[m.channel] or m.channel in free, (opts, m)
                    allowed = policy.messages.catalogue[m.message_type].channels
                    if any(opts[ch] and ch not in hard for ch in allowed):
                        assert opts[m.channel], ("a consented channel comes first", opts, m)
                else:
                    assert opts[m.channel], (opts, m)
            if len(hard) == 3:
                assert d.messages == [] and all("opted out" in s.reason for s in d.suppressed)


def test_order_notices_reach_customers_without_marketing_consent(policy, customer):
    c = customer(email_opt_in=False, sms_opt_in=False, push_opt_in=False)
    ev = OrderEvent(
        event_type="placed", order_id=1, customer_id=42, occurred_at=datetime(2025, 6, 10, 12)
    )
    (m,) = decide_order_event(ev, c, Scores(), policy).messages
    assert m.channel == "email"
    hard = customer(
        email_opt_in=True, opted_out_channels=["email"], sms_opt_in=False, push_opt_in=False
    )
    d = decide_order_event(ev, hard, Scores(), policy)
    assert d.messages == [] and "opted out" in d.suppressed[0].reason


def test_preferred_channel_wins_when_allowed(policy, customer):
    c = customer(preferred_channels=["sms"], email_opt_in=True, sms_opt_in=True)
    ev = OrderEvent(
        event_type="shipped",
        order_id=1,
        customer_id=42,
        occurred_at=datetime(2025, 6, 10, 12),
        promised_date=datetime(2025, 6, 12).date(),
    )
    (m,) = decide_order_event(ev, c, Scores(), policy).messages
    assert m.channel == "sms"


def test_transactional_messages_ignore_quiet_hours_and_caps(policy, customer):
    night = datetime(2025, 6, 10, 23, 30)
    busy = customer(recent_messages=[])
    ev = OrderEvent(event_type="placed", order_id=1, customer_id=42, occurred_at=night)
    (m,) = decide_order_event(ev, busy, Scores(), policy).messages
    assert m.send_at == night  # order confirmations go out at once
    ev2 = ev.model_copy(update={"event_type": "shipped"})
    (m2,) = decide_order_event(ev2, busy, Scores(), policy).messages
    assert m2.send_at == datetime(2025, 6, 11, 8, 0)  # shipping news waits for the morning


def test_missing_consent_means_no_marketing_but_service_messages_go_out(policy):
    """A customer sent without any consent field gets no win-back, yet a delay notice."""
    now = datetime(2025, 6, 10, 12)
    c = CustomerContext(customer_id=7, last_order_at=now - timedelta(days=75))
    daily = decide_daily(c, now, Scores(churn_risk=0.95), policy)
    assert not [m for m in daily.messages if m.category == "marketing"]
    assert "win_back" in [s.message_type for s in daily.suppressed]
    ev = OrderEvent(
        event_type="in_transit",
        order_id=1,
        customer_id=7,
        occurred_at=now,
        ordered_at=now - timedelta(days=6),
        order_value=30,
        promised_date=(now - timedelta(days=1)).date(),
    )
    late = Scores(delivery=DeliveryEstimate(p50_days=9, p90_days=12), churn_risk=0.2)
    notice = decide_order_event(ev, c, late, policy)
    assert [m.message_type for m in notice.messages] == ["delay_notice"]
    assert notice.messages[0].channel == "email"
    opted = c.model_copy(update={"email_opt_in": True})
    assert any(
        m.message_type == "win_back"
        for m in decide_daily(opted, now, Scores(churn_risk=0.95), policy).messages
    )


def _delay_event(customer_id: int = 42) -> tuple[OrderEvent, Scores]:
    now = datetime(2025, 6, 10, 12)
    ev = OrderEvent(
        event_type="in_transit",
        order_id=1,
        customer_id=customer_id,
        occurred_at=now,
        ordered_at=now - timedelta(days=6),
        order_value=30,
        promised_date=(now - timedelta(days=1)).date(),
    )
    return ev, Scores(delivery=DeliveryEstimate(p50_days=9, p90_days=12), churn_risk=0.2)


def test_a_channel_without_a_contact_falls_back_in_the_catalogue_order(policy, customer):
    """delay_notice may use [sms, push, email]: no phone -> push; no device id either ->
    email; the reason names what was skipped."""
    ev, late = _delay_event()
    no_phone = customer(email="a@example.com", phone=None, device_id="dev-42")
    (m,) = decide_order_event(ev, no_phone, late, policy).messages
    assert m.channel == "push" and "sms skipped: no phone number" in m.reason
    only_email = customer(email="a@example.com", phone=None, device_id=None)
    (m,) = decide_order_event(ev, only_email, late, policy).messages
    assert m.channel == "email" and "sms skipped: no phone number" in m.reason
    # a preferred channel without a contact gives way too
    prefers_sms = customer(email="a@example.com", preferred_channels=["sms"], sms_opt_in=True)
    (m,) = decide_order_event(ev, prefers_sms, late, policy).messages
    assert m.channel == "email" and "sms skipped: no phone number" in m.reason
    with_phone = customer(email="a@example.com", phone="+4930123456", preferred_channels=["sms"])
    (m,) = decide_order_event(ev, with_phone, late, policy).messages
    assert m.channel == "sms" and "skipped" not in m.reason


def test_no_contact_on_any_allowed_channel_says_why_no_message(policy, customer):
    """Consent to SMS only (marketing), a phone missing: the win-back is not planned onto
    a channel it cannot reach, nor onto one the customer refused."""
    now = datetime(2025, 6, 10, 12)
    c = customer(
        email="a@example.com",
        phone=None,
        device_id=None,
        email_opt_in=False,
        push_opt_in=False,
        sms_opt_in=True,
        last_order_at=now - timedelta(days=75),
    )
    d = decide_daily(c, now, Scores(churn_risk=0.95), policy)
    assert "win_back" not in [m.message_type for m in d.messages]
    (s,) = [s for s in d.suppressed if s.message_type == "win_back"]
    assert s.reason == (
        "win_back not sent: no contact on any channel the customer allows (no phone number for sms)"
    )


def test_a_context_without_any_contact_is_chosen_on_consent_alone(policy, customer):
    """A caller that sends no contacts delivers the messages itself: nothing is skipped."""
    ev, late = _delay_event()
    (m,) = decide_order_event(ev, customer(), late, policy).messages
    assert m.channel == "sms" and "skipped" not in m.reason


@pytest.mark.parametrize("phone", ["(555) 010-2030", "0151 2345678", "+49 30 1234567", "+4930"])
def test_a_phone_not_in_e164_is_no_sms_contact(policy, customer, phone):
    """The SMS gateway takes E.164 only: another form falls back like no phone at all."""
    ev, late = _delay_event()
    c = customer(email="a@example.com", phone=phone, device_id=None, preferred_channels=["sms"])
    (m,) = decide_order_event(ev, c, late, policy).messages
    assert m.channel == "email" and "sms skipped: no phone number" in m.reason
