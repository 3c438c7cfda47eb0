"""A customer's loyalty position in one read: the figures every loyalty message shows.

``loyalty_summary`` is the one call message rendering, the API and support tools use,
so "points to your next reward" is computed the same way everywhere.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from ppx.rules.ledger import Ledger, _now
from ppx.rules.loyalty.catalogue import next_reward
from ppx.rules.loyalty.expiry import expiry_date, last_activity
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import CustomerTier
from ppx.rules.policy import Policy


@dataclass(frozen=True)
class LoyaltySummary:
    """Balance, tier, the next reward and what is about to expire.

    ``next_reward_*`` are None when every eligible reward is already affordable (or the
    catalogue is empty); ``expiring_points``/``expires_on`` are 0/None without a balance
    or an expiry rule. ``expiry_soon`` is True inside the reminder window. Points that
    lapsed before the daily sweep wrote their expiry count as 0 (they cannot be spent).
    """

    customer_id: int
    balance: int
    tier: str
    tier_since: date | None
    tier_review_on: date | None
    next_reward_id: str | None
    next_reward_name: str | None
    next_reward_points: int | None
    points_to_next_reward: int
    expiring_points: int
    expires_on: date | None
    expiry_soon: bool
    last_activity_at: datetime | None

    def to_dict(self) -> dict:
        out = asdict(self)
        for k, v in out.items():
            if isinstance(v, date | datetime):
                out[k] = v.isoformat()
        return out


def loyalty_summary(
    ledger: Ledger,
    policy: Policy,
    customer_id: int,
    *,
    now: datetime | None = None,
    tier: str | None = None,
) -> LoyaltySummary:
    """The customer's balance, tier, next reward, points to it and expiring points/date.

    Args:
        ledger: the points ledger (the loyalty tables are created beside it if missing).
        policy: the policy whose catalogue, tiers and expiry rule apply.
        customer_id: the customer.
        now: the moment of the summary (default: now, UTC); decides ``expiry_soon``.
        tier: the tier to assume when the customer has no stored tier yet (default: the
            policy's entry tier). A stored tier always wins.
    """
    ensure_tables(ledger)
    now = now or _now()
    cid = int(customer_id)
    with Session(ledger.engine) as s:
        balance = ledger._balance(s, cid)
        last = last_activity(s, cid)
        row = s.scalars(select(CustomerTier).where(CustomerTier.customer_id == cid)).one_or_none()
    return summarize(
        policy,
        cid,
        balance,
        last,
        row.tier if row is not None else (tier or policy.tiers[0].name),
        now,
        tier_since=row.since.date() if row is not None else None,
        tier_review_on=row.review_at.date() if row is not None else None,
    )


def summarize(
    policy: Policy,
    customer_id: int,
    balance: int,
    last_activity_at: datetime | None,
    tier: str,
    now: datetime,
    *,
    tier_since: date | None = None,
    tier_review_on: date | None = None,
) -> LoyaltySummary:
    """:func:`loyalty_summary` from figures already read: the balance, the last earning or
    redemption and the current tier (the nightly batch reads them for a whole bucket at
    once; the decision service reads them from the ledger per customer)."""
    due = expiry_date(policy, last_activity_at) if balance > 0 else None
    lapsed = due is not None and due <= now
    if lapsed:  # lapsed but not swept yet: they can no longer be spent
        balance = 0
    nxt = next_reward(policy, balance, tier)
    soon = (
        not lapsed
        and due is not None
        and policy.points.expiry is not None
        and (due - now).total_seconds() <= policy.points.expiry.reminder_days * 86_400
    )
    return LoyaltySummary(
        customer_id=int(customer_id),
        balance=balance,
        tier=tier,
        tier_since=tier_since,
        tier_review_on=tier_review_on,
        next_reward_id=nxt.id if nxt else None,
        next_reward_name=nxt.name if nxt else None,
        next_reward_points=nxt.points if nxt else None,
        points_to_next_reward=(nxt.points - balance) if nxt else 0,
        expiring_points=balance if due is not None and not lapsed else 0,
        expires_on=due.date() if due is not None else None,
        expiry_soon=bool(soon),
        last_activity_at=last_activity_at,
    )
