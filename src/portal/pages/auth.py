"""Signing in without a password: ask for a link, open it, sign out.

``/signin`` (public): the shopper enters an email address or a customer number; when the
store knows it, a magic link is queued in the message outbox for the address on file
(never the one typed), and the page answers the same either way, so it cannot be used to
find out who is a customer. Requests are rate limited per (client, address) and per
client (:mod:`ppx.portal.ratelimit`).

``/auth?token=...`` (public): opens a link, sets the session cookie and redirects to the
order it was for (or the orders list), dropping the token from the address bar.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from starlette.responses import Response

from ppx.portal import access as A
from ppx.portal.web import PageContext, page
from ppx.rules.messages.outbox import NewMessage


async def signin(ctx: PageContext) -> Response:
    if ctx.form is None:
        return ctx.render("signin.html.j2", sent=False, limited=False)
    who = str(ctx.form.get("who", "")).strip()[:320]
    client = ctx.request.client.host if ctx.request.client else "-"
    # The limiter keys hold a digest, not the address: nothing personal kept in memory.
    addr = hashlib.sha256(who.lower().encode()).hexdigest()[:24]
    portal = ctx.portal
    if not (portal.client_limit.allow(client) and portal.link_limit.allow(f"{client}|{addr}")):
        return ctx.render("signin.html.j2", status=429, sent=False, limited=True)
    store = portal.store
    cid = None
    if who.isdigit() and store.has_customer(int(who)):
        cid = int(who)
    elif "@" in who:
        cid = store.customer_by_email(who)
    if cid is not None:
        send_link(ctx, cid)
    return ctx.render("signin.html.j2", sent=True, limited=False)


def send_link(ctx: PageContext, customer_id: int, order_id: int | None = None) -> bool:
    """Queue a magic-link email to the customer's address on file; True if queued."""
    portal = ctx.portal
    email = str(portal.store.customer_row(customer_id)["email"])
    url = portal.link_url(customer_id, order_id=order_id, lang=ctx.lang)
    now = datetime.now(UTC).replace(tzinfo=None)
    msg = NewMessage(
        message_key=f"portal_link:{customer_id}:{secrets.token_hex(8)}",
        customer_id=customer_id,
        message_type="portal_link",
        channel="email",
        category="transactional",
        content={"link": url, "hours": int(portal.settings.portal_link_hours)},
        send_after=now,
        locale=ctx.lang,
        to_address=email,
    )
    return portal.outbox.enqueue([msg])[0]


async def open_link(ctx: PageContext) -> Response:
    portal = ctx.portal
    token = ctx.request.query_params.get("token", "")
    link = A.read_link_token(token, portal.settings.portal_secret)  # 403 / 410
    if not portal.store.has_customer(link.customer_id):
        raise A.AccessDenied("unknown customer")
    lang = ctx.request.query_params.get("lang") or link.lang
    session = A.Access(link.customer_id, link.order_id, 0, lang, "")
    ctx.cookies[A.COOKIE] = A.make_session(
        session, portal.settings.portal_secret, portal.settings.portal_session_hours
    )
    if link.order_id is not None:
        return ctx.redirect("tracking", order_id=link.order_id)
    return ctx.redirect("orders")


async def signout(ctx: PageContext) -> Response:
    response = ctx.redirect("signin")
    response.delete_cookie(A.COOKIE, path=ctx.request.scope.get("root_path", "") or "/")
    return response


ROUTES = [
    page("/signin", signin, name="signin", methods=["GET", "POST"], public=True),
    page("/auth", open_link, name="auth", public=True),
    page("/signout", signout, name="signout", methods=["POST"]),
]
