"""The portal's home: the customer's orders, newest first, with their status."""

from __future__ import annotations

from starlette.responses import Response

from ppx.portal.web import PageContext, page

PAGE_SIZE = 20


async def orders(ctx: PageContext) -> Response:
    access = ctx.access
    if access.order_id is not None:  # a link for one order shows that order only
        return ctx.redirect("tracking", order_id=access.order_id)
    store = ctx.portal.store
    try:
        shown = max(1, int(ctx.request.query_params.get("page", "1")))
    except ValueError:
        shown = 1
    ids = store.order_ids(ctx.customer_id)
    chunk = ids[(shown - 1) * PAGE_SIZE : shown * PAGE_SIZE]
    rows = [store.order(ctx.customer_id, i) for i in chunk]
    return ctx.render(
        "orders.html.j2",
        orders=rows,
        page=shown,
        more=len(ids) > shown * PAGE_SIZE,
        now=ctx.portal.now,
    )


ROUTES = [page("/", orders, name="orders")]
NAV = [("nav.orders", "orders")]
