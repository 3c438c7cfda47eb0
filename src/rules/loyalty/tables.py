"""The loyalty programme's tables, beside the points ledger in the same database.

They share the ledger's declarative ``Base`` so one engine, one URL and one transaction
cover a redemption's ledger entry and its voucher row (nothing half-written). Created
by :class:`ppx.rules.loyalty.store.LoyaltyStore`, never at import.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from ppx.rules.ledger import Base

_ID = BigInteger().with_variant(Integer, "sqlite")


class Redemption(Base):
    """A reward issued to a customer: paid with points, or a free yearly gift."""

    __tablename__ = "loyalty_redemptions"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    reward_id: Mapped[str] = mapped_column(String(64), nullable=False)
    points: Mapped[int] = mapped_column(Integer, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    #: the ledger entry that paid for it (None for a gift)
    ledger_entry_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    voucher_code: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: "points", "birthday" or "anniversary"
    source: Mapped[str] = mapped_column(String(16), nullable=False)
    #: "issued" or "reversed"
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    #: the order the voucher was spent on; its refund gives the points back
    order_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    reversed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reversal_reason: Mapped[str] = mapped_column(String(500), nullable=False, default="")


class CustomerTier(Base):
    """A customer's current tier and when it is next reviewed (one row per customer)."""

    __tablename__ = "loyalty_tiers"

    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    tier: Mapped[str] = mapped_column(String(64), nullable=False)
    since: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    review_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class TierChange(Base):
    """One tier decision: entry, upgrade, retained at review, or downgrade."""

    __tablename__ = "loyalty_tier_history"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    from_tier: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_tier: Mapped[str] = mapped_column(String(64), nullable=False)
    change: Mapped[str] = mapped_column(String(16), nullable=False)
    spend_12m: Mapped[float] = mapped_column(Float, nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (Index("ix_loyalty_tier_history_customer", "customer_id", "at"),)


class ReferralCode(Base):
    """A customer's own referral code (one per customer, unguessable, never reused)."""

    __tablename__ = "loyalty_referral_codes"

    customer_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    code: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class Referral(Base):
    """A referred customer's attribution: one per referee, decided on the first order."""

    __tablename__ = "loyalty_referrals"

    referee_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    referrer_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    code: Mapped[str] = mapped_column(String(64), nullable=False)
    first_order_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    ordered_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    #: "pending" (waiting for the return window), "paid", "refused" or "cancelled"
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    reason: Mapped[str] = mapped_column(String(500), nullable=False)
    settled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


LOYALTY_TABLES = [
    Redemption.__table__,
    CustomerTier.__table__,
    TierChange.__table__,
    ReferralCode.__table__,
    Referral.__table__,
]
