"""Points expiry after a period of inactivity, and the reminder before it.

Rule (``points.expiry`` in the policy): every point a customer holds lapses
``inactivity_months`` after their last *activity*, an earning or a redemption entry.
Reversals, expiries and returned redemptions are not activity: a refund must not keep
points alive. One date per customer makes the reminder one honest sentence.

Exact under concurrency: :func:`expire_points` reads the balance and the last activity
and writes the expiry under the ledger's per-customer lock, with an idempotency key
made of the customer and the last-activity time. A redemption that lands first renews
the activity (nothing expires); one that lands after finds a zero balance. Two sweeps
write one entry.
"""

from __future__ import annotations

import calendar
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ppx.rules.decisions import _Builder
from ppx.rules.ledger import Ledger, LedgerEntry, Posting, _add_entry, _now, _prior
from ppx.rules.policy import Policy
from ppx.rules.types import CustomerContext, Decision

#: Ledger entry types that are not activity (they never renew the expiry date).
#: An ``opening_balance`` (``ppx loyalty seed``) is activity on purpose: it is dated at
#: the customer's last earning or redemption in the brand's export, so the deadline it
#: gives is the export's own, neither renewed by the day of the seeding nor lost.
NOT_ACTIVITY = ("reversal", "expiry", "redemption_reversal")


def add_months(t: datetime, months: int) -> datetime:
    """``t`` plus whole calendar months, clamped to the month's last day (31 Jan + 1 = 28 Feb)."""
    m = t.month - 1 + months
    y, m = t.year + m // 12, m % 12 + 1
    return t.replace(year=y, month=m, day=min(t.day, calendar.monthrange(y, m)[1]))


def last_activity(s: Session, customer_id: int) -> datetime | None:
    """When the customer last earned or redeemed (None: never)."""
    return s.scalar(
        select(func.max(LedgerEntry.created_at)).where(
            LedgerEntry.customer_id == int(customer_id),
            LedgerEntry.entry_type.not_in(NOT_ACTIVITY),
        )
    )


def expiry_date(policy: Policy, last: datetime | None) -> datetime | None:
    """When the points lapse, given the last activity (None: no expiry rule or no activity)."""
    if policy.points.expiry is None or last is None:
        return None
    return add_months(last, policy.points.expiry.inactivity_months)


def expire_points(
    ledger: Ledger, policy: Policy, customer_id: int, now: datetime | None = None
) -> Posting | None:
    """Write the expiry of a customer's points when they have lapsed; None when not due.

    Idempotent: the key is ``expiry:<customer>:<last activity>``, so a repeat of the same
    sweep returns the entry already written.
    """
    if policy.points.expiry is None:
        return None
    now = now or _now()

    def attempt() -> Posting | None:
        with Session(ledger.engine) as s, s.begin():
            ledger._locked(s, customer_id)
            return expire_in(s, ledger, policy, customer_id, now)

    return ledger._retry(attempt)


def expire_in(
    s: Session, ledger: Ledger, policy: Policy, customer_id: int, now: datetime
) -> Posting | None:
    """Expire lapsed points inside the caller's transaction (which holds the customer's lock).

    Redemptions call this first, so lapsed points can never be spent, whether or not the
    daily sweep has run yet.
    """
    if policy.points.expiry is None:
        return None
    last = last_activity(s, customer_id)
    due = expiry_date(policy, last)
    if due is None or now < due:
        return None
    key = f"expiry:{int(customer_id)}:{last.isoformat()}"
    prior = _prior(s, key)
    if prior is not None:
        return prior
    bal = ledger._balance(s, customer_id)
    if bal <= 0:
        return None
    months = policy.points.expiry.inactivity_months
    reason = (
        f"{bal} points expired on {due.date()}: no earning or redemption since "
        f"{last.date()} ({months} months of inactivity)"
    )
    return _add_entry(s, customer_id, -bal, "expiry", key, None, reason, due)


def expire_due(
    ledger: Ledger, policy: Policy, now: datetime | None = None, customer_ids=None
) -> list[Posting]:
    """The daily sweep: expire every lapsed balance (or only ``customer_ids``')."""
    if policy.points.expiry is None:
        return []
    now = now or _now()
    if customer_ids is None:
        with Session(ledger.engine) as s:
            customer_ids = s.scalars(
                select(LedgerEntry.customer_id)
                .group_by(LedgerEntry.customer_id)
                .having(func.sum(LedgerEntry.points) > 0)
            ).all()
    out = []
    for cid in customer_ids:
        p = expire_points(ledger, policy, int(cid), now)
        if p is not None:
            out.append(p)
    return out


def decide_expiry_reminder(
    customer: CustomerContext,
    policy: Policy,
    now: datetime,
    balance: int,
    expires_at: datetime | None,
    *,
    points_to_next_reward: int | None = None,
    next_reward: str | None = None,
) -> Decision:
    """A ``points_expiring`` message when points lapse within ``reminder_days``.

    Pure, like the other ``decide_*`` functions: consent, quiet hours and caps apply
    through the same builder. The reminder's date is part of its reason so the outbox
    sends one per expiry date.
    """
    b = _Builder("daily", customer, policy, now)
    exp = policy.points.expiry
    if exp is None:
        b.reasons.append("no points expiry in this policy")
        return b.build()
    if balance <= 0 or expires_at is None:
        b.reasons.append("no points to expire")
        return b.build()
    left = expires_at - now
    if left <= timedelta(0):
        b.reasons.append(f"points already lapsed on {expires_at.date()}")
        return b.build()
    if left > timedelta(days=exp.reminder_days):
        b.reasons.append(
            f"{balance} points expire on {expires_at.date()}, more than "
            f"{exp.reminder_days} days away"
        )
        return b.build()
    days = max(1, left.days + (1 if left.seconds else 0))
    b.message(
        "points_expiring",
        f"{balance} points expire on {expires_at.date()} (in {days} days)",
        {
            "points": balance,
            "expires_on": expires_at.date().isoformat(),
            "days_left": days,
            "points_to_next_reward": points_to_next_reward,
            "next_reward": next_reward,
        },
    )
    return b.build()


def expires_on(t: datetime | None) -> date | None:
    return None if t is None else t.date()
