"""Start a return or exchange, see the instant decision, then follow the refund.

The form posts to the same desk as ``POST /returns/resolve`` of the decision service
(:class:`ppx.rules.returns_flow.desk.ReturnsDesk` over the engine): the fraud model scores
the return, the policy decides (instant refund, refund on receipt, inspection, manual
review; store credit; exchange shipped now or on receipt) and the resolution, stock,
credit and point reversals are recorded together. The page shows the decision in the
shopper's words and, afterwards, the resolution's status from the returns store.

One return per order line: its id is derived from the order and the line
(:func:`return_id`), so sending the form twice (or from two tabs) finds the recorded
resolution instead of opening a second return.
"""

from __future__ import annotations

from starlette.responses import Response

from ppx.data.columns import RETURN_REASONS
from ppx.portal.access import require_order
from ppx.portal.data import Order
from ppx.portal.web import PageContext, page
from ppx.rules.returns_flow.decide import ExchangeItem, ResolutionError, ReturnChoice
from ppx.rules.returns_flow.desk import ResolveRequest, ReturnsDesk
from ppx.rules.returns_flow.store import ReturnsStore
from ppx.rules.types import ReturnEvent

#: Ids the portal gives returns and claims start here, clear of a brand's own numbering.
ID_BASE = 10**12


def return_id(order_id: int, line_no: int) -> int:
    return ID_BASE + int(order_id) * 1000 + int(line_no)


def desk(ctx: PageContext) -> ReturnsDesk:
    portal = ctx.portal
    box = portal.__dict__.setdefault("_returns_desk", {})
    if "d" not in box:
        store = ReturnsStore(portal.engine.ledger, portal.policy)
        box["d"] = ReturnsDesk(portal.engine, store, clock=lambda: portal.now)
    return box["d"]


def resolutions(ctx: PageContext, order: Order) -> dict[int, dict]:
    """Recorded resolutions of the order's lines, by line number."""
    out = {}
    store = desk(ctx).store
    for it in order.items:
        try:
            out[it.line_no] = store.summary(return_id(order.order_id, it.line_no))
        except LookupError:
            continue
    return out


async def return_start(ctx: PageContext) -> Response:
    order_id = int(ctx.request.path_params["order_id"])
    require_order(ctx.request, order_id)
    portal = ctx.portal
    order = portal.store.order(ctx.customer_id, order_id)
    done = resolutions(ctx, order)
    error = None
    if ctx.form is not None:
        try:
            line_no = await _resolve(ctx, order, done)
        except (ResolutionError, ValueError) as err:
            error = str(err)
        else:  # show the decision on a GET, so a reload does not send the form again
            return ctx.redirect("return_start", order_id=order_id, _query=f"decided={line_no}")
    decided = ctx.request.query_params.get("decided", "")
    decision = done.get(int(decided)) if decided.isdigit() else None
    window_end = None
    if order.delivered_at is not None:
        from datetime import timedelta

        window_end = order.delivered_at + timedelta(days=portal.policy.returns.window_days)
    return ctx.render(
        "return.html.j2",
        status=422 if error else 200,
        order=order,
        done=done,
        decision=decision,
        error=error,
        reasons=RETURN_REASONS,
        allowed=portal.policy.returns.resolutions.allowed,
        window_end=window_end,
        now=portal.now,
    )


async def _resolve(ctx: PageContext, order: Order, done: dict[int, dict]) -> int:
    """Decide and record the return the form asks for; the order line it was for."""
    form = ctx.form
    assert form is not None
    if order.delivered_at is None:
        raise ValueError("not delivered yet")
    try:
        line_no = int(str(form.get("line", "")))
    except ValueError:
        raise ValueError("choose the item to return") from None
    item = next((it for it in order.items if it.line_no == line_no), None)
    if item is None:
        raise ValueError("choose the item to return")
    reason = str(form.get("reason", "other"))
    if reason not in RETURN_REASONS:
        reason = "other"
    resolution = str(form.get("resolution", "refund"))
    variant = str(form.get("variant", "")).strip()[:64] or None
    exchange = None
    if resolution == "exchange":
        if variant is None:
            raise ValueError("say which size, grind or colour you want instead")
        exchange = ExchangeItem(
            product_id=item.product_id, variant=variant, unit_price=item.unit_price
        )
    choice = ReturnChoice(resolution=resolution, exchange=exchange)  # type: ignore[arg-type]
    customer = ctx.portal.customer(ctx.customer_id, ctx.lang)
    request = ReturnEvent(
        return_id=return_id(order.order_id, line_no),
        order_id=order.order_id,
        customer_id=ctx.customer_id,
        product_id=item.product_id,
        requested_at=ctx.portal.now,
        delivered_at=order.delivered_at,
        amount=round(item.total, 2),
        reason=reason,  # type: ignore[arg-type]
    )
    await desk(ctx).resolve(ResolveRequest(request=request, customer=customer, choice=choice))
    return line_no


ROUTES = [
    page(
        "/orders/{order_id:int}/return",
        return_start,
        name="return_start",
        methods=["GET", "POST"],
    ),
]
