"""Exchange, store credit or refund for a return: the pure decision.

The trust question is the one :func:`ppx.rules.decisions.decide_return` already answers
(window, ring, fraud risk by segment, history, amount): a return it would refund
instantly comes from a customer the fraud model and the tier trust. This module keeps
that answer and extends it with what the customer chose:

* ``refund``: unchanged (instant refund with the points reversed now, or on receipt);
* ``store_credit``: the amount plus ``store_credit_bonus_pct`` (at most
  ``store_credit_max_bonus``), issued now for a trusted customer, else when the item is
  back; the order's points for the amount are reversed when the credit is issued (the
  bonus is the brand's cost of keeping the money);
* ``exchange``: another variant or product, shipped now for a trusted customer
  (``ship_exchange_ahead``), else when the item is back; the order keeps its points for
  the value exchanged; a cheaper replacement refunds the difference (and reverses its
  points), a dearer one collects it (up to ``max_exchange_difference``).

Inspection and manual review keep their meaning: the resolution waits for them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from ppx.rules.decisions import _earn_points, _tier, decide_return
from ppx.rules.policy import Policy
from ppx.rules.types import Action, CustomerContext, Decision, ReturnEvent, Scores

Resolution = Literal["exchange", "store_credit", "refund"]
Variant = Annotated[str, Field(min_length=1, max_length=64)]


class ExchangeItem(BaseModel):
    """The replacement: another variant (size, grind ...) of the item or another product."""

    model_config = ConfigDict(extra="forbid")

    product_id: Annotated[int, Field(ge=1)]
    variant: Variant | None = None
    unit_price: Annotated[float, Field(ge=0.0, le=1_000_000.0)]


class ReturnChoice(BaseModel):
    """What the customer asked for, beside the return request itself."""

    model_config = ConfigDict(extra="forbid")

    resolution: Resolution = "refund"
    variant: Variant | None = None  # the returned item's variant
    exchange: ExchangeItem | None = None


class ResolutionError(ValueError):
    """A resolution the policy does not allow or a request that does not add up (422)."""


def reversal_key(order_id: int, return_id: int, part: str = "return") -> str:
    """The ledger key of a return's reversal; "return" is the refund's own key."""
    base = f"reversal:{order_id}:return:{return_id}"  # the key decide_return uses
    return base if part == "return" else f"{base}:{part}"


def decide_return_resolution(
    request: ReturnEvent,
    choice: ReturnChoice,
    customer: CustomerContext,
    scores: Scores,
    policy: Policy,
) -> Decision:
    """The return decision, extended with exchange and store credit (see module doc)."""
    rules = policy.returns.resolutions
    if choice.resolution not in rules.allowed:
        raise ResolutionError(
            f"resolution {choice.resolution!r} is not offered; the policy allows {rules.allowed}"
        )
    if choice.resolution == "exchange" and choice.exchange is None:
        raise ResolutionError("an exchange needs exchange.product_id and exchange.unit_price")
    if choice.resolution != "exchange" and choice.exchange is not None:
        raise ResolutionError(f"exchange is given but the resolution is {choice.resolution!r}")
    if (
        choice.exchange is not None
        and request.product_id is not None
        and choice.exchange.product_id == request.product_id
        and choice.exchange.variant == choice.variant
    ):
        raise ResolutionError("the replacement is the same product and variant as the return")
    base = decide_return(request, customer, scores, policy)
    if choice.resolution == "refund":
        return base
    tier = _tier(policy, customer.tier)
    trusted = base.outcome == "instant_refund"
    waiting = base.outcome in ("inspect", "manual_review")
    # Keep the trust reasoning, drop the refund-specific actions (replaced below).
    kept = [a for a in base.actions if a.kind not in ("instant_refund", "refund_on_receipt")]
    kept = [a for a in kept if a.kind != "reverse_points"]
    reasons = [r for r in base.reasons]
    actions: list[Action] = list(kept)
    amount = request.amount
    cur = policy.currency

    def act(kind: str, reason: str, **kw) -> None:
        actions.append(Action(kind=kind, reason=reason, **kw))
        reasons.append(reason)

    def reverse(value: float, part: str, why: str) -> None:
        pts = _earn_points(policy, tier, value)
        if pts > 0:
            act(
                "reverse_points",
                f"{why} -> reverse {pts} points",
                points=-pts,
                ledger_type="reversal",
                idempotency_key=reversal_key(request.order_id, request.return_id, part),
                order_id=request.order_id,
            )

    if choice.resolution == "store_credit":
        bonus = min(amount * rules.store_credit_bonus_pct / 100.0, rules.store_credit_max_bonus)
        credit = round(amount + bonus, 2)
        why = (
            f"store credit {credit:,.2f} {cur} = {amount:,.2f} + bonus {bonus:,.2f} "
            f"({rules.store_credit_bonus_pct:g} %, at most {rules.store_credit_max_bonus:g})"
        )
        if trusted:
            outcome = "store_credit_instant"
            act("store_credit", f"trusted (instant-refund rules) -> {why} now", amount=credit)
            reverse(amount, "return", f"store credit for {amount:,.2f} returned")
        elif waiting:
            outcome = base.outcome
            act(
                "store_credit_on_receipt",
                f"{base.outcome} first -> {why} once cleared",
                amount=credit,
            )
        else:
            outcome = "store_credit_on_receipt"
            act("store_credit_on_receipt", f"{why} when the item is back", amount=credit)
    else:
        ex = choice.exchange
        assert ex is not None
        diff = round(ex.unit_price - amount, 2)
        if diff > rules.max_exchange_difference:
            raise ResolutionError(
                f"the replacement costs {diff:,.2f} {cur} more than the return, above the "
                f"policy's max_exchange_difference {rules.max_exchange_difference:g}; refund "
                "and place a new order instead"
            )
        what = f"product {ex.product_id}" + (f" ({ex.variant})" if ex.variant else "")
        if trusted and rules.ship_exchange_ahead:
            outcome = "exchange_shipped_ahead"
            act(
                "exchange_ship_now",
                f"trusted (instant-refund rules) -> {what} ships now, before the return arrives",
                amount=ex.unit_price,
            )
        elif waiting:
            outcome = base.outcome
            act(
                "exchange_on_receipt",
                f"{base.outcome} first -> {what} ships once cleared",
                amount=ex.unit_price,
            )
        else:
            outcome = "exchange_on_receipt"
            act("exchange_on_receipt", f"{what} ships when the item is back", amount=ex.unit_price)
        if diff > 0:
            act(
                "collect_difference",
                f"replacement dearer by {diff:,.2f} {cur} -> collect it",
                amount=diff,
            )
        elif diff < 0 and outcome == "exchange_shipped_ahead":
            reverse(-diff, "difference", f"replacement cheaper by {-diff:,.2f} {cur} -> refund it")
        elif diff < 0:
            reasons.append(f"replacement cheaper by {-diff:,.2f} {cur} -> refunded when settled")
        if diff == 0:
            reasons.append("same value exchanged -> the order keeps its points")
    reasons.append(f"return {request.return_id}: {choice.resolution} -> {outcome}")
    messages = [
        m.model_copy(
            update={"content": {**m.content, "outcome": outcome, "resolution": choice.resolution}}
        )
        for m in base.messages
    ]
    return base.model_copy(
        update={"outcome": outcome, "actions": actions, "reasons": reasons, "messages": messages}
    )
