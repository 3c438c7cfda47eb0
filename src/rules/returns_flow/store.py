"""Return resolutions, inventory events and store credit, in the ledger's database.

Tables beside ``loyalty_ledger``:

* ``return_resolutions``: one row per return (``return_id`` is the request key): the
  resolution, the outcome, what has been settled (money, credit, the replacement's
  shipment, the item's receipt) and the numbers needed to settle the rest;
* ``inventory_events``: signed stock movements with a unique ``event_key``: ``-1`` when a
  replacement leaves stock (``exchange_shipped`` or ``exchange_reserved``), ``+1`` when a
  returned item is received (``return_received``);
* ``store_credit``: signed money entries with a unique ``entry_key``; a customer's credit
  is the sum.

Why one transaction for everything a step does: an exchange moves stock and (for a
cheaper replacement) points; a refund or credit reverses points. Written together under
the customer's ledger lock, a crash leaves either all of it or none, and a retry (same
return id) finds the row and answers as before, so stock, credit and points never drift
apart. ``summary`` reads all three for one return.

A return whose refund or store credit takes back all the points its order earned (the
order is fully returned) also undoes what a full refund of the order undoes
(:func:`ppx.rules.loyalty.redemption.undo_order_rewards_in`): the vouchers spent on the
order are cancelled and their points returned, and a pending referral whose first order
it was is cancelled, in the same transaction. ``summary`` lists the vouchers returned.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    bindparam,
    case,
    func,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from ppx.rules.decisions import _earn_points
from ppx.rules.ledger import Ledger, LedgerEntry
from ppx.rules.loyalty.redemption import undo_order_rewards_in
from ppx.rules.loyalty.store import ensure_tables
from ppx.rules.loyalty.tables import Redemption
from ppx.rules.policy import Policy
from ppx.rules.returns_flow.decide import ResolutionError, ReturnChoice, reversal_key
from ppx.rules.types import Decision, ReturnEvent

_ID = BigInteger().with_variant(Integer, "sqlite")
_L = LedgerEntry.__table__
#: What an order earned, and its net after reversals.
_ORDER_POINTS = select(
    func.coalesce(func.sum(case((_L.c.entry_type == "earn", _L.c.points), else_=0)), 0),
    func.coalesce(func.sum(_L.c.points), 0),
).where(
    _L.c.customer_id == bindparam("cid"),
    _L.c.order_id == bindparam("oid"),
    _L.c.entry_type.in_(("earn", "reversal")),
)
WAITING = ("inspect", "manual_review")


class Base(DeclarativeBase):
    pass


class ReturnResolutionRow(Base):
    __tablename__ = "return_resolutions"

    return_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    order_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    tier: Mapped[str] = mapped_column(String(32), nullable=False)
    resolution: Mapped[str] = mapped_column(String(16), nullable=False)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(24), nullable=False)
    amount: Mapped[float] = mapped_column(Float, nullable=False)
    product_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    exchange_product_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    exchange_variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    exchange_price: Mapped[float | None] = mapped_column(Float, nullable=True)
    credit_amount: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    refunded: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    credited: Mapped[float] = mapped_column(Float, nullable=False, default=0.0)
    exchange_out: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    item_received: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    reasons: Mapped[str] = mapped_column(String, nullable=False, default="[]")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class InventoryEventRow(Base):
    __tablename__ = "inventory_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    event_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    event_type: Mapped[str] = mapped_column(String(32), nullable=False)
    product_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    variant: Mapped[str | None] = mapped_column(String(64), nullable=True)
    quantity: Mapped[int] = mapped_column(Integer, nullable=False)
    return_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)

    __table_args__ = (
        Index("ix_inventory_events_product", "product_id", "variant"),
        Index("ix_inventory_events_return", "return_id"),
    )


class StoreCreditRow(Base):
    __tablename__ = "store_credit"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    entry_key: Mapped[str] = mapped_column(String(200), nullable=False, unique=True)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    amount: Mapped[float] = mapped_column(Float, nullable=False)
    return_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    reason: Mapped[str] = mapped_column(String(500), nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


class ReturnsStore:
    """Opens and settles return resolutions; stock, credit and points move together."""

    def __init__(self, ledger: Ledger, policy: Policy, create: bool = True):
        self.ledger = ledger
        self.policy = policy
        self.engine = ledger.engine
        if create:
            Base.metadata.create_all(self.engine)
            ensure_tables(ledger)  # vouchers and referrals a full return undoes

    # --- writes ------------------------------------------------------------------------

    def open(
        self,
        request: ReturnEvent,
        choice: ReturnChoice,
        decision: Decision,
        tier: str,
        now: datetime,
    ) -> dict:
        """Record a decided return and do what it says now; a repeat returns the first."""

        def attempt() -> dict:
            with Session(self.engine) as s, s.begin():
                self.ledger._locked(s, request.customer_id)
                row = s.get(ReturnResolutionRow, request.return_id)
                if row is not None:
                    if row.customer_id != request.customer_id or row.order_id != request.order_id:
                        raise ResolutionError(
                            f"return {request.return_id} is already recorded for order "
                            f"{row.order_id} of customer {row.customer_id}"
                        )
                    return {**self._summary(s, row), "replayed": True}
                ex = choice.exchange
                credit = sum(
                    a.amount or 0.0 for a in decision.actions if a.kind.startswith("store_credit")
                )
                row = ReturnResolutionRow(
                    return_id=request.return_id,
                    customer_id=request.customer_id,
                    order_id=request.order_id,
                    tier=tier,
                    resolution=choice.resolution,
                    outcome=decision.outcome or "",
                    status="awaiting_inspection" if decision.outcome in WAITING else "open",
                    amount=request.amount,
                    product_id=request.product_id,
                    variant=choice.variant,
                    exchange_product_id=ex.product_id if ex else None,
                    exchange_variant=ex.variant if ex else None,
                    exchange_price=ex.unit_price if ex else None,
                    credit_amount=round(credit, 2),
                    refunded=0.0,
                    credited=0.0,
                    exchange_out=False,
                    item_received=False,
                    reasons=json.dumps(decision.reasons),
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                for a in decision.actions:
                    if a.kind == "reverse_points" and a.order_id is not None:
                        self.ledger._reverse_in(
                            s,
                            row.customer_id,
                            a.order_id,
                            -a.points,
                            a.idempotency_key,
                            a.reason,
                            now,
                        )
                    elif a.kind == "instant_refund":
                        row.refunded = request.amount
                    elif a.kind == "store_credit":
                        self._credit(s, row, now)
                    elif a.kind == "exchange_ship_now":
                        self._exchange_out(s, row, "exchange_shipped", now)
                        self._refund_difference(s, row, now)
                    elif a.kind == "exchange_on_receipt" and row.status == "open":
                        self._exchange_out(s, row, "exchange_reserved", now)
                s.flush()
                self._undo_rewards(s, row, now)
                return {**self._summary(s, row), "replayed": False}

        return self.ledger._retry(attempt)

    def receive(self, return_id: int, inspection: str | None, now: datetime) -> dict:
        """The returned item arrived (and, if it had to, passed or failed inspection)."""
        if inspection not in (None, "passed", "failed"):
            raise ResolutionError(f"inspection must be passed or failed, got {inspection!r}")

        def attempt() -> dict:
            with Session(self.engine) as s, s.begin():
                # The row lock serialises receipts of one return; the customer's ledger
                # lock, reversals and redemptions of the same customer.
                q = select(ReturnResolutionRow).where(
                    ReturnResolutionRow.return_id == int(return_id)
                )
                row = s.scalars(q.with_for_update()).one_or_none()
                if row is None:
                    raise LookupError(f"return {return_id} has no recorded resolution")
                self.ledger._locked(s, row.customer_id)
                if row.item_received:
                    return {**self._summary(s, row), "replayed": True}
                if row.status == "awaiting_inspection" and inspection is None:
                    raise ResolutionError(
                        f"return {return_id} is held for {row.outcome}: give inspection "
                        "passed or failed"
                    )
                row.item_received = True
                if inspection == "failed":
                    # Nothing is refunded, credited or exchanged; the item goes back.
                    row.status = "rejected"
                    row.updated_at = now
                    return {**self._summary(s, row), "replayed": False}
                self._inventory(
                    s, row, "return_received", row.product_id, row.variant, +1, "in", now
                )
                if row.resolution == "refund" and row.refunded == 0:
                    row.refunded = row.amount
                    self._reverse(s, row, row.amount, "return", now)
                elif row.resolution == "store_credit" and row.credited == 0:
                    self._credit(s, row, now)
                elif row.resolution == "exchange":
                    if not row.exchange_out:
                        self._exchange_out(s, row, "exchange_shipped", now)
                    self._refund_difference(s, row, now)
                row.status = "closed"
                row.updated_at = now
                s.flush()
                self._undo_rewards(s, row, now)
                return {**self._summary(s, row), "replayed": False}

        return self.ledger._retry(attempt)

    # --- steps (inside the caller's transaction) ---------------------------------------

    def _inventory(self, s, row, kind, product_id, variant, qty, part, now) -> None:
        if product_id is None:
            return  # a return without a product id moves no tracked stock
        s.add(
            InventoryEventRow(
                event_key=f"inv:return:{row.return_id}:{part}",
                event_type=kind,
                product_id=product_id,
                variant=variant,
                quantity=qty,
                return_id=row.return_id,
                created_at=now,
            )
        )

    def _exchange_out(self, s, row, kind, now) -> None:
        self._inventory(s, row, kind, row.exchange_product_id, row.exchange_variant, -1, "out", now)
        row.exchange_out = True

    def _credit(self, s, row, now) -> None:
        s.add(
            StoreCreditRow(
                entry_key=f"credit:return:{row.return_id}",
                customer_id=row.customer_id,
                amount=row.credit_amount,
                return_id=row.return_id,
                reason=f"store credit for return {row.return_id} ({row.amount:,.2f} + bonus)",
                created_at=now,
            )
        )
        row.credited = row.credit_amount
        self._reverse(s, row, row.amount, "return", now)  # by key: once, whoever asks first

    def _refund_difference(self, s, row, now) -> None:
        diff = round((row.exchange_price or 0.0) - row.amount, 2)
        if diff < 0 and row.refunded == 0:
            row.refunded = -diff
            self._reverse(s, row, -diff, "difference", now)

    def _reverse(self, s, row, value: float, part: str, now) -> None:
        pts = _earn_points(self.policy, row.tier, value)
        if pts > 0:
            self.ledger._reverse_in(
                s,
                row.customer_id,
                row.order_id,
                pts,
                reversal_key(row.order_id, row.return_id, part),
                f"return {row.return_id}: {value:,.2f} refunded -> reverse {pts} points",
                now,
            )

    def _undo_rewards(self, s, row, now) -> None:
        """A fully returned order undoes what a full refund undoes (see the module doc).

        Fully returned: the order earned points and the reversals (this return's and any
        earlier refund's) have taken all of them back. A partial return leaves the
        vouchers spent, as a partial refund does.
        """
        if row.refunded <= 0 and row.credited <= 0:
            return
        earned, net = s.execute(_ORDER_POINTS, {"cid": row.customer_id, "oid": row.order_id}).one()
        if int(earned or 0) > 0 and int(net or 0) <= 0:
            undo_order_rewards_in(s, row.customer_id, row.order_id, "fully returned", now)

    # --- reads -------------------------------------------------------------------------

    def summary(self, return_id: int) -> dict:
        with Session(self.engine) as s:
            row = s.get(ReturnResolutionRow, int(return_id))
            if row is None:
                raise LookupError(f"return {return_id} has no recorded resolution")
            return self._summary(s, row)

    def _summary(self, s: Session, row: ReturnResolutionRow) -> dict:
        inv = s.scalars(
            select(InventoryEventRow)
            .where(InventoryEventRow.return_id == row.return_id)
            .order_by(InventoryEventRow.id)
        ).all()
        prefix = reversal_key(row.order_id, row.return_id)
        ledger = s.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.idempotency_key.like(prefix + "%"))
            .order_by(LedgerEntry.id)
        ).all()
        return {
            "return_id": row.return_id,
            "customer_id": row.customer_id,
            "order_id": row.order_id,
            "resolution": row.resolution,
            "outcome": row.outcome,
            "status": row.status,
            "amount": row.amount,
            "refunded": row.refunded,
            "credited": row.credited,
            "exchange_out": row.exchange_out,
            "item_received": row.item_received,
            "reasons": json.loads(row.reasons),
            "inventory": [
                {
                    "event_type": e.event_type,
                    "product_id": e.product_id,
                    "variant": e.variant,
                    "quantity": e.quantity,
                }
                for e in inv
            ],
            "points_reversed": -sum(e.points for e in ledger),
            "ledger": [{"key": e.idempotency_key, "points": e.points} for e in ledger],
            "store_credit_balance": self._credit_balance(s, row.customer_id),
            "vouchers_returned": [
                {"redemption_id": r.id, "reward_id": r.reward_id, "points": r.points}
                for r in s.scalars(
                    select(Redemption)
                    .where(
                        Redemption.order_id == row.order_id,
                        Redemption.customer_id == row.customer_id,
                        Redemption.status == "reversed",
                    )
                    .order_by(Redemption.id)
                )
            ],
        }

    @staticmethod
    def _credit_balance(s: Session, customer_id: int) -> float:
        q = select(func.coalesce(func.sum(StoreCreditRow.amount), 0.0)).where(
            StoreCreditRow.customer_id == int(customer_id)
        )
        return round(float(s.scalar(q)), 2)

    def stock_movement(self, product_id: int, variant: str | None = None) -> int:
        """Net units moved by returns and exchanges for one product (and variant)."""
        with Session(self.engine) as s:
            q = select(func.coalesce(func.sum(InventoryEventRow.quantity), 0)).where(
                InventoryEventRow.product_id == int(product_id)
            )
            if variant is not None:
                q = q.where(InventoryEventRow.variant == variant)
            return int(s.scalar(q))
