"""File a delivery claim (not received, or damaged in transit) and see the decision.

The claim goes through the engine exactly like ``POST /decide/claim``
(:meth:`ppx.rules.engine.DecisionEngine.claim`: the claim-fraud model, the policy's
fast payout / standard review / investigation, the ledger and the claim message). The
decision is kept in ``portal_claims`` (one claim per order, keyed like the returns), so a
second form for the same order shows the first decision instead of deciding again.
"""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, String, Text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from starlette.responses import Response

from ppx.data.columns import CLAIM_TYPES
from ppx.portal.access import require_order
from ppx.portal.data import Order
from ppx.portal.pages.returns import ID_BASE
from ppx.portal.web import PageContext, page
from ppx.rules.engine import ClaimDecisionRequest
from ppx.rules.types import ClaimEvent


class _Base(DeclarativeBase):
    pass


class PortalClaimRow(_Base):
    __tablename__ = "portal_claims"

    claim_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    customer_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    order_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    claim_type: Mapped[str] = mapped_column(String(32), nullable=False)
    outcome: Mapped[str] = mapped_column(String(32), nullable=False)
    decision: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False)


def claim_id(order_id: int) -> int:
    return ID_BASE + int(order_id)


def _engine(ctx: PageContext):
    eng = ctx.portal.engine.ledger.engine
    _Base.metadata.create_all(eng)
    return eng


def recorded(ctx: PageContext, order: Order) -> dict | None:
    with Session(_engine(ctx)) as s:
        row = s.get(PortalClaimRow, claim_id(order.order_id))
        if row is None or row.customer_id != ctx.customer_id:
            return None
        return {
            "claim_type": row.claim_type,
            "outcome": row.outcome,
            "decision": json.loads(row.decision),
            "created_at": row.created_at,
        }


async def claim_start(ctx: PageContext) -> Response:
    order_id = int(ctx.request.path_params["order_id"])
    require_order(ctx.request, order_id)
    portal = ctx.portal
    order = portal.store.order(ctx.customer_id, order_id)
    done = recorded(ctx, order)
    error = None
    if ctx.form is not None and done is None:
        kind = str(ctx.form.get("claim_type", ""))
        if kind not in CLAIM_TYPES:
            error = "choose what happened"
        elif order.shipment_id is None:
            error = "not shipped yet"
        else:
            await _decide(ctx, order, kind)
            return ctx.redirect("claim_start", order_id=order_id)  # a reload sends nothing
    return ctx.render(
        "claim.html.j2",
        status=422 if error else 200,
        order=order,
        done=done,
        error=error,
        claim_types=CLAIM_TYPES,
    )


async def _decide(ctx: PageContext, order: Order, kind: str) -> dict:
    portal = ctx.portal
    status = order.status if order.status in ("delivered", "in_transit", "lost") else "in_transit"
    event = ClaimEvent(
        claim_id=claim_id(order.order_id),
        order_id=order.order_id,
        customer_id=ctx.customer_id,
        claimed_at=portal.now,
        claim_type=kind,  # type: ignore[arg-type]
        amount=order.order_value,
        shipment_id=order.shipment_id,
        carrier_status=status,  # type: ignore[arg-type]
        signature=order.signature,
    )
    customer = portal.customer(ctx.customer_id, ctx.lang)
    # Record the claim first: a second form for the same order finds the row and the
    # engine is not asked twice.
    eng = _engine(ctx)
    row = PortalClaimRow(
        claim_id=event.claim_id,
        customer_id=ctx.customer_id,
        order_id=order.order_id,
        claim_type=kind,
        outcome="pending",
        decision="{}",
        created_at=portal.now,
    )
    try:
        with Session(eng) as s, s.begin():
            s.add(row)
    except IntegrityError:
        return recorded(ctx, order) or {}
    res = await portal.engine.claim(ClaimDecisionRequest(request=event, customer=customer))
    decision = res.decision.model_dump(mode="json")
    with Session(eng) as s, s.begin():
        stored = s.get(PortalClaimRow, event.claim_id)
        stored.outcome = res.decision.outcome or "pending"
        stored.decision = json.dumps(decision)
    return recorded(ctx, order) or {}


ROUTES = [
    page(
        "/orders/{order_id:int}/claim",
        claim_start,
        name="claim_start",
        methods=["GET", "POST"],
    ),
]
