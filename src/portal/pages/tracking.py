"""The tracking page: the link in every shipping message.

What it shows, all for the signed-in customer's own order:

* the order and its items;
* the stage timeline (ordered, shipped, in transit with the last scan, out for delivery,
  delivered);
* the delivery window from the delivery model and its on-time probability in plain words
  ("9 in 10 parcels like this arrive by Thursday"), re-estimated at each scan (the
  estimates after every scan are listed, the latest first);
* the delay notice and the apology gesture when the policy gives one: the rules'
  own decision (:func:`ppx.rules.decisions.decide_order_event`) for the parcel's
  current event, evaluated without writing anything, next to what the ledger holds;
* the points the order earned (ledger entries of the order) or will earn on delivery;
* recommendations from the recs model;
* notification preferences per delivery stage (a form; saved in the preference centre).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from starlette.responses import Response

from ppx.portal.access import require_order
from ppx.portal.data import Order
from ppx.portal.services import Portal, Window
from ppx.portal.web import PageContext, page
from ppx.rules.decisions import _earn_points, _tier, decide_order_event
from ppx.rules.engine import OrderEventRequest
from ppx.rules.types import CustomerContext, OrderEvent

#: The delivery stages a shopper can be told about, by message kind (the preference form).
STAGE_MESSAGES = ("shipped", "out_for_delivery", "delay_notice", "delivered")


def odds_in_ten(p: float) -> int:
    """A probability as "n in 10", rounded down so the words never promise more."""
    return max(0, min(10, int(p * 10 + 1e-9)))


def current_event(order: Order, window: Window | None, now: datetime) -> OrderEvent | None:
    """The order's latest event as the rules know it (None before it ships)."""
    base = dict(
        order_id=order.order_id,
        customer_id=order.customer_id,
        ordered_at=order.ordered_at,
        order_value=order.order_value,
        promised_date=order.promised_date,
        carrier=order.carrier,
    )
    if order.status == "delivered" and order.delivered_at is not None:
        return OrderEvent(
            event_type="delivered",
            occurred_at=order.delivered_at,
            delivered_at=order.delivered_at,
            **base,
        )
    if order.status == "lost":
        at = order.last_scan.at if order.last_scan else now
        return OrderEvent(event_type="lost", occurred_at=at, **base)
    if order.shipped_at is None:
        return None
    if order.last_scan is not None and order.last_scan.event_type == "out_for_delivery":
        return OrderEvent(event_type="out_for_delivery", occurred_at=order.last_scan.at, **base)
    return OrderEvent(event_type="in_transit", occurred_at=now, **base)


async def policy_view(
    portal: Portal, order: Order, customer: CustomerContext, window: Window | None
) -> dict:
    """What the policy says about the order now: delay notice, apology points, points.

    The decision is evaluated, never applied: opening a page must not award points. The
    scores are the ones the decision service would use (the current delivery window; the
    churn model for a late parcel of a subscriber).
    """
    event = current_event(order, window, portal.now)
    out = {"delay": False, "apology_points": 0, "earn_points": 0, "reasons": [], "event": event}
    if event is None:
        return out
    scores = None
    if window is not None and event.event_type == "in_transit":
        from ppx.rules.types import DeliveryEstimate, Scores

        days = lambda d: float((d - order.ordered_at.date()).days)  # noqa: E731
        scores = Scores(
            delivery=DeliveryEstimate(p50_days=days(window.earliest), p90_days=days(window.latest))
        )
    req = OrderEventRequest(event=event, customer=customer, scores=scores)
    wanted: dict[str, dict] = {}
    if event.event_type in ("delivered", "lost") and customer.subscription_id is not None:
        late = event.event_type == "lost" or order.late_days > portal.policy.apology.grace_days
        if late:
            wanted["churn"] = {"customer_id": customer.customer_id}
    fetched = await portal.engine._scores(req, wanted)
    customer, _ = await portal.engine.resolve_customer(customer)
    decision = decide_order_event(event, customer, fetched, portal.policy)
    # The page shows the notice even when the shopper turned the message off.
    suppressed = [m.message_type for m in decision.suppressed]
    out["delay"] = "delay_notice" in [*decision.message_types(), *suppressed]
    out["apology_points"] = sum(
        a.points for a in decision.actions_of("award_points") if a.ledger_type == "apology"
    )
    out["earn_points"] = sum(
        a.points for a in decision.actions_of("award_points") if a.ledger_type == "earn"
    )
    out["reasons"] = decision.reasons
    return out


def points_of(portal: Portal, order: Order, customer: CustomerContext, view: dict) -> dict:
    """Ledger entries of this order; without any, what the policy gives for it (the
    delivered event's award) or will give on delivery (an open order)."""
    ledger = portal.engine.ledger
    entries = [e for e in ledger.history(order.customer_id, 500) if e["order_id"] == order.order_id]
    earned = sum(e["points"] for e in entries) if entries else view["earn_points"]
    expected = 0
    if not entries and order.open:
        expected = _earn_points(
            portal.policy, _tier(portal.policy, customer.tier), order.order_value
        )
    return {"entries": entries, "earned": earned, "expected": expected}


async def tracking(ctx: PageContext) -> Response:
    order_id = int(ctx.request.path_params["order_id"])
    require_order(ctx.request, order_id)
    portal = ctx.portal
    order = portal.store.order(ctx.customer_id, order_id)  # LookupError -> 403
    customer = portal.customer(ctx.customer_id, ctx.lang)
    k = max(portal.policy.messages.catalogue["thank_you"].recommendations or 3, 3)
    (windows, why), (recs, recs_why) = await asyncio.gather(
        portal.delivery_windows(order), portal.recommendations(ctx.customer_id, k)
    )
    current = windows[-1] if windows and order.open else None
    view = await policy_view(portal, order, customer, current)
    saved = ctx.request.query_params.get("saved") == "1"
    prefs = stage_preferences(portal, ctx.customer_id)
    return ctx.render(
        "tracking.html.j2",
        order=order,
        stages=order.stages(),
        window=current,
        windows=list(reversed(windows)),
        window_error=why,
        odds=odds_in_ten(current.p_by_latest) if current else None,
        on_time=odds_in_ten(current.p_on_time)
        if current and current.p_on_time is not None
        else None,
        view=view,
        points=points_of(portal, order, customer, view),
        recs=recs,
        recs_error=recs_why,
        prefs=prefs,
        saved=saved,
        late_days=max((portal.now.date() - order.promised_date).days, 0)
        if order.open
        else order.late_days,
        now=portal.now,
    )


def stage_preferences(portal: Portal, customer_id: int) -> list[dict]:
    """Per delivery stage: may it be sent, on which channels, and is it locked on."""
    store = portal.engine.preferences
    if store is None:
        return []
    prefs = store.get(customer_id)["kinds"]
    return [
        {
            "kind": kind,
            "channels": prefs[kind]["channels"],
            "on": any(prefs[kind]["channels"].values()),
            "locked": prefs[kind]["locked"],
        }
        for kind in STAGE_MESSAGES
        if kind in prefs
    ]


async def notifications(ctx: PageContext) -> Response:
    """Save which delivery stages the shopper hears about, per channel (``kind:channel``)."""
    order_id = int(ctx.request.path_params["order_id"])
    require_order(ctx.request, order_id)
    portal = ctx.portal
    portal.store.order(ctx.customer_id, order_id)
    store = portal.engine.preferences
    assert ctx.form is not None and store is not None
    wanted = {str(v) for v in ctx.form.getlist("pref")}
    current = store.get(ctx.customer_id)["kinds"]
    body = {
        "kinds": {
            kind: {ch: f"{kind}:{ch}" in wanted for ch in current[kind]["channels"]}
            for kind in STAGE_MESSAGES
            if kind in current and not current[kind]["locked"]
        }
    }
    store.put(ctx.customer_id, body)
    return ctx.redirect("tracking", order_id=order_id, _query="saved=1")


ROUTES = [
    page("/orders/{order_id:int}", tracking, name="tracking"),
    page(
        "/orders/{order_id:int}/notifications",
        notifications,
        name="tracking_notifications",
        methods=["POST"],
    ),
]
