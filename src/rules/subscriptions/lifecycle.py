"""A subscription's state and the transitions a subscriber may make, as pure functions.

States: ``active`` (deliveries every ``cadence_days``), ``paused`` (no delivery until
``paused_until``) and ``cancelled`` (terminal). Each action checks the transition and its
arguments against the policy's ``subscriptions`` section and returns the new state and
the event to record; an illegal one raises :class:`TransitionError` with the HTTP status
the API answers: 409 when the action conflicts with the current state (resuming an active
subscription, anything on a cancelled one), 422 when the arguments are refused (a resume
date past the longest pause, a cadence the brand does not offer).

Nothing here reads a clock or a database: the store (``ppx.rules.subscriptions.store``)
loads the state, calls these, and writes the state and the event in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Literal

from ppx.rules.policy import Policy

Status = Literal["active", "paused", "cancelled"]


class TransitionError(ValueError):
    """An action the subscription's state or the policy does not allow."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Subscription:
    """The current state of one subscription (one row of the ``subscription_state`` table)."""

    subscription_id: int
    customer_id: int
    product_id: int
    status: Status
    cadence_days: int
    price: float
    next_delivery_at: datetime
    paused_until: datetime | None = None
    consecutive_skips: int = 0
    discount_pct: float = 0.0
    discount_orders_left: int = 0
    last_offer_at: datetime | None = None
    pending_offer: dict | None = None
    cancelled_at: datetime | None = None
    version: int = 0

    @property
    def next_price(self) -> float:
        """The price of the next delivery, after any save-offer discount."""
        if self.discount_orders_left > 0:
            return round(self.price * (1 - self.discount_pct / 100.0), 2)
        return self.price


@dataclass(frozen=True)
class Change:
    """What an action did: the new state and the event to record."""

    state: Subscription
    event_type: str
    detail: dict
    reason: str


def require(sub: Subscription, allowed: tuple[str, ...], action: str) -> None:
    if sub.status not in allowed:
        if sub.status == "cancelled":
            why = "it was cancelled"
        elif sub.status == "paused":
            why = (
                f"it is paused until {sub.paused_until:%Y-%m-%d}" if sub.paused_until else "paused"
            )
        else:
            why = "it is active"
        raise TransitionError(409, f"cannot {action} subscription {sub.subscription_id}: {why}")


def _day(d: date | datetime) -> datetime:
    return d if isinstance(d, datetime) else datetime(d.year, d.month, d.day)


def pause(sub: Subscription, resume_on: date | datetime, now: datetime, policy: Policy) -> Change:
    """Pause until ``resume_on``; deliveries restart on that day."""
    require(sub, ("active",), "pause")
    rules = policy.subscriptions
    resume = _day(resume_on)
    days = (resume.date() - now.date()).days
    if days < rules.min_pause_days or days > rules.max_pause_days:
        raise TransitionError(
            422,
            f"resume date {resume:%Y-%m-%d} is {days} day(s) away; a pause lasts "
            f"{rules.min_pause_days}-{rules.max_pause_days} days",
        )
    new = replace(
        sub,
        status="paused",
        paused_until=resume,
        next_delivery_at=max(resume, sub.next_delivery_at),
        consecutive_skips=0,
    )
    return Change(
        new,
        "pause",
        {"resume_on": resume.date().isoformat(), "days": days},
        f"paused for {days} days; deliveries restart on {resume:%Y-%m-%d}",
    )


def resume(sub: Subscription, now: datetime, policy: Policy) -> Change:
    """End a pause now; the next delivery is one cadence from today at the latest."""
    require(sub, ("paused",), "resume")
    nxt = min(sub.next_delivery_at, now + timedelta(days=sub.cadence_days))
    nxt = max(nxt, now)
    new = replace(sub, status="active", paused_until=None, next_delivery_at=nxt)
    return Change(
        new,
        "resume",
        {"next_delivery_at": nxt.isoformat()},
        f"resumed; next delivery {nxt:%Y-%m-%d}",
    )


def skip_next(sub: Subscription, now: datetime, policy: Policy) -> Change:
    """Skip the next delivery: it moves one cadence later."""
    require(sub, ("active",), "skip the next delivery of")
    limit = policy.subscriptions.max_consecutive_skips
    if sub.consecutive_skips >= limit:
        raise TransitionError(
            422,
            f"subscription {sub.subscription_id} already skipped {sub.consecutive_skips} "
            f"deliveries in a row (policy allows {limit}); pause it instead",
        )
    skipped = sub.next_delivery_at
    nxt = skipped + timedelta(days=sub.cadence_days)
    new = replace(sub, next_delivery_at=nxt, consecutive_skips=sub.consecutive_skips + 1)
    return Change(
        new,
        "skip",
        {"skipped_delivery_at": skipped.isoformat(), "next_delivery_at": nxt.isoformat()},
        f"delivery of {skipped:%Y-%m-%d} skipped; next delivery {nxt:%Y-%m-%d}",
    )


def change_cadence(sub: Subscription, cadence_days: int, now: datetime, policy: Policy) -> Change:
    """Deliver every ``cadence_days`` from now on (active or paused)."""
    require(sub, ("active", "paused"), "change the cadence of")
    offered = policy.subscriptions.cadence_days
    if cadence_days not in offered:
        raise TransitionError(
            422, f"cadence {cadence_days} days is not offered; choose one of {offered}"
        )
    if cadence_days == sub.cadence_days:
        raise TransitionError(
            409, f"subscription {sub.subscription_id} already delivers every {cadence_days} days"
        )
    # The next delivery keeps its distance from the last one under the new cadence.
    last = sub.next_delivery_at - timedelta(days=sub.cadence_days)
    nxt = max(last + timedelta(days=cadence_days), now)
    if sub.status == "paused" and sub.paused_until is not None:
        nxt = max(nxt, sub.paused_until)
    new = replace(sub, cadence_days=cadence_days, next_delivery_at=nxt)
    return Change(
        new,
        "cadence_change",
        {"old": sub.cadence_days, "new": cadence_days, "next_delivery_at": nxt.isoformat()},
        f"cadence {sub.cadence_days} -> {cadence_days} days; next delivery {nxt:%Y-%m-%d}",
    )


def due_resume(sub: Subscription, now: datetime) -> Change | None:
    """A pause whose resume date has passed ends by itself (recorded before any action)."""
    if sub.status != "paused" or sub.paused_until is None or sub.paused_until > now:
        return None
    new = replace(sub, status="active", paused_until=None)
    return Change(
        new,
        "resume",
        {"resume_on": sub.paused_until.date().isoformat(), "automatic": True},
        f"pause ended on {sub.paused_until:%Y-%m-%d}",
    )


def renew(sub: Subscription, now: datetime) -> Change:
    """A delivery went out: charge the next price, count down a discount, move on a cadence."""
    require(sub, ("active",), "renew")
    charged = sub.next_price
    left = max(sub.discount_orders_left - 1, 0)
    nxt = max(sub.next_delivery_at, now) + timedelta(days=sub.cadence_days)
    new = replace(
        sub,
        next_delivery_at=nxt,
        consecutive_skips=0,
        discount_orders_left=left,
        discount_pct=sub.discount_pct if left else 0.0,
    )
    return Change(
        new,
        "renew",
        {"charged": charged, "next_delivery_at": nxt.isoformat()},
        f"delivery sent, {charged:.2f} charged; next delivery {nxt:%Y-%m-%d}",
    )


def cancel(sub: Subscription, now: datetime, reason: str | None) -> Change:
    """Cancel for good (after the save offer, if any, was declined)."""
    require(sub, ("active", "paused"), "cancel")
    new = replace(sub, status="cancelled", cancelled_at=now, pending_offer=None)
    why = f" ({reason})" if reason else ""
    return Change(new, "cancel", {"reason": reason}, f"cancelled{why}; no further deliveries")


def swap_product(sub: Subscription, product_id: int) -> Change:
    """Deliver another product from the next delivery on (a save offer)."""
    require(sub, ("active", "paused"), "swap the product of")
    new = replace(sub, product_id=product_id)
    return Change(
        new,
        "swap",
        {"old": sub.product_id, "new": product_id},
        f"product {sub.product_id} -> {product_id} from the next delivery",
    )


def discount(sub: Subscription, percent: float, orders: int) -> Change:
    """Take ``percent`` off the next ``orders`` deliveries (a save offer)."""
    require(sub, ("active", "paused"), "discount")
    new = replace(sub, discount_pct=percent, discount_orders_left=orders)
    return Change(
        new,
        "discount",
        {"percent": percent, "orders": orders},
        f"{percent:g} % off the next {orders} deliveries",
    )
