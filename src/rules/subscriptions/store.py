"""Subscription state and events in the ledger's database (SQLAlchemy; SQLite or PostgreSQL).

Three tables beside ``loyalty_ledger``:

* ``subscription_state``: one row per subscription, its current state and a ``version``;
* ``subscription_events``: append-only, one row per thing that happened (pause, resume,
  skip, cadence_change, save_offer_made, save_offer_accepted, save_offer_declined,
  discount, swap, cancel, start), with the request key that caused it;
* ``subscription_requests``: one row per request key with the answer it got, so a retried
  request (same key) gets the same answer and changes nothing.

Each action is one transaction: the request key is looked up, the state row is read
under a lock (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE``
already admits one writer), the pure transition runs, and state, events and the request
row are written together. Two concurrent requests with the same new key: the second hits
the request table's primary key, rolls back, and returns the first one's answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields
from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ppx.rules.ledger import Ledger
from ppx.rules.subscriptions.lifecycle import Change, Subscription, TransitionError


class Base(DeclarativeBase):
    pass


_ID = BigInteger().with_variant(Integer, "sqlite")


class SubscriptionRow(Base):
    __tablename__ = "subscription_state"

    subscription_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    product_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    cadence_days: Mapped[int] = mapped_column(Integer, nullable=False)
    price: Mapped[float] = mapped_column(Float, nullable=False)
    next_delivery_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    paused_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    consecutive_skips: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    discount_pct: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    discount_orders_left: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    last_offer_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    pending_offer: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    cancelled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class SubscriptionEventRow(Base):
    __tablename__ = "subscription_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    request_key: Mapped[str] = mapped_column(String(200), nullable=False)
    detail: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    reason: Mapped[str] = mapped_column(String(1000), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (
        Index("ix_subscription_events_sub", "subscription_id", "id"),
        Index("ix_subscription_events_key", "request_key"),
    )


class SubscriptionRequestRow(Base):
    __tablename__ = "subscription_requests"

    request_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    subscription_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    response: Mapped[str] = mapped_column(String, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


_STATE_FIELDS = [f.name for f in fields(Subscription)]


def _to_state(r: SubscriptionRow) -> Subscription:
    return Subscription(**{k: getattr(r, k) for k in _STATE_FIELDS})


def state_dict(s: Subscription) -> dict:
    """The state as JSON-ready values (what the API answers)."""
    out = asdict(s)
    for k, v in out.items():
        if isinstance(v, datetime):
            out[k] = v.isoformat()
    out["next_price"] = s.next_price
    return out


#: An action inside the transaction: the locked current state -> (changes, answer).
Step = Callable[[Subscription], tuple[list[Change], dict]]


class SubscriptionStore:
    """Subscription state, events and request keys, in the ledger's database."""

    def __init__(self, ledger: Ledger, create: bool = True):
        self.ledger = ledger
        self.engine = ledger.engine
        if create:
            Base.metadata.create_all(self.engine)

    # --- reads -------------------------------------------------------------------------

    def get(self, subscription_id: int) -> Subscription:
        with Session(self.engine) as s:
            row = s.get(SubscriptionRow, int(subscription_id))
            if row is None:
                raise TransitionError(404, f"subscription {subscription_id} is not known")
            return _to_state(row)

    def of_customer(self, customer_id: int) -> list[Subscription]:
        """A customer's subscriptions (any status), oldest first: the portal's list."""
        with Session(self.engine) as s:
            rows = s.scalars(
                select(SubscriptionRow)
                .where(SubscriptionRow.customer_id == int(customer_id))
                .order_by(SubscriptionRow.subscription_id)
            ).all()
            return [_to_state(r) for r in rows]

    def events(self, subscription_id: int, limit: int = 100) -> list[dict]:
        with Session(self.engine) as s:
            rows = s.scalars(
                select(SubscriptionEventRow)
                .where(SubscriptionEventRow.subscription_id == int(subscription_id))
                .order_by(SubscriptionEventRow.id)
                .limit(limit)
            ).all()
            return [
                {
                    "event_id": r.id,
                    "event_type": r.event_type,
                    "request_key": r.request_key,
                    "detail": r.detail,
                    "reason": r.reason,
                    "created_at": r.created_at.isoformat(),
                }
                for r in rows
            ]

    def answered(self, request_key: str, subscription_id: int, action: str) -> dict | None:
        """The stored answer of a request key (None if new); a key reused elsewhere is 422."""
        with Session(self.engine) as s:
            row = s.get(SubscriptionRequestRow, request_key)
            return None if row is None else _replay(row, subscription_id, action)

    # --- writes ------------------------------------------------------------------------

    def upsert(self, sub: Subscription, request_key: str, now: datetime) -> dict:
        """Register a subscription (or return the answer of an earlier call with this key)."""

        def step(cur: Subscription | None) -> tuple[list[Change], dict]:
            if cur is not None:
                raise TransitionError(
                    409, f"subscription {sub.subscription_id} is already registered"
                )
            ch = Change(sub, "start", {"cadence_days": sub.cadence_days}, "registered")
            return [ch], {"status": sub.status}

        return self.run(sub.subscription_id, "register", request_key, now, step, create=sub)

    def run(
        self,
        subscription_id: int,
        action: str,
        request_key: str,
        now: datetime,
        step,
        create: Subscription | None = None,
    ) -> dict:
        """Run ``step`` on the locked state and write its changes, once per request key."""
        if not request_key or len(request_key) > 200:
            raise TransitionError(
                422, "request_key must be a non-empty string of at most 200 chars"
            )

        def attempt() -> dict:
            try:
                with Session(self.engine) as s, s.begin():
                    q = select(SubscriptionRow).where(
                        SubscriptionRow.subscription_id == int(subscription_id)
                    )
                    row = s.scalars(q.with_for_update()).one_or_none()
                    # Looked up under the row lock: a concurrent twin has committed by now.
                    prior = s.get(SubscriptionRequestRow, request_key)
                    if prior is not None:
                        return _replay(prior, subscription_id, action)
                    if create is not None:
                        changes, answer = step(None if row is None else _to_state(row))
                    else:
                        if row is None:
                            raise TransitionError(
                                404, f"subscription {subscription_id} is not known"
                            )
                        changes, answer = step(_to_state(row))
                    final = self._write(s, row, changes, request_key, now)
                    answer = {
                        **answer,
                        "subscription": state_dict(final),
                        "events": [c.event_type for c in changes],
                        "request_key": request_key,
                    }
                    s.add(
                        SubscriptionRequestRow(
                            request_key=request_key,
                            subscription_id=int(subscription_id),
                            action=action,
                            response=json.dumps(answer, default=str),
                            created_at=now,
                        )
                    )
                    s.flush()
                    return {**answer, "replayed": False}
            except IntegrityError:
                # A concurrent request with the same key won; answer as it did.
                with Session(self.engine) as s:
                    prior = s.get(SubscriptionRequestRow, request_key)
                    if prior is None:
                        raise
                    return _replay(prior, subscription_id, action)

        return self.ledger._retry(attempt)

    @staticmethod
    def _write(
        s: Session, row: SubscriptionRow | None, changes: list[Change], key: str, now: datetime
    ) -> Subscription:
        if not changes:
            raise AssertionError("an action must change something")
        final = changes[-1].state
        values = {k: getattr(final, k) for k in _STATE_FIELDS}
        values["version"] = (row.version + 1) if row is not None else 0
        values["updated_at"] = now
        if row is None:
            row = SubscriptionRow(**values)
            s.add(row)
        else:
            for k, v in values.items():
                setattr(row, k, v)
        for ch in changes:
            s.add(
                SubscriptionEventRow(
                    subscription_id=final.subscription_id,
                    customer_id=final.customer_id,
                    event_type=ch.event_type,
                    request_key=key,
                    detail=json.loads(json.dumps(ch.detail, default=str)),
                    reason=ch.reason[:1000],
                    created_at=now,
                )
            )
        s.flush()
        return _to_state(row)


def _replay(row: SubscriptionRequestRow, subscription_id: int, action: str) -> dict:
    if row.subscription_id != int(subscription_id) or row.action != action:
        raise TransitionError(
            422,
            f"request_key {row.request_key!r} was already used for {row.action} of "
            f"subscription {row.subscription_id}; use a new key for a new request",
        )
    return {**json.loads(row.response), "replayed": True}
