"""Subscription management: pause until a date, skip, resume, change cadence, cancel.

Every action is :class:`ppx.rules.subscriptions.actions.SubscriptionActions`, the same
object behind the decision service's ``/subscriptions`` routes, so the portal cannot
allow what the policy refuses: the page parses the form, checks that the subscription is
the signed-in customer's, and shows the rules' answer. A cancel is two steps, as in the
rules: the first asks (the policy's save offer, when one applies, is recorded and shown),
the second accepts the offer or confirms the cancel.

The request key of each action is the form's single-use CSRF nonce (``portal:<nonce>``):
one submitted form is one action, and the rules' idempotency table records it.
The clock is the store's (:attr:`ppx.portal.services.Portal.now`), the moment the pages
show as "now", so a pause date is counted from the same day the page offers.
"""

from __future__ import annotations

import weakref
from datetime import date, datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from ppx.data import columns as C
from ppx.portal.account import form_key, reader, require_account, text
from ppx.portal.services import Portal
from ppx.portal.web import PageContext, page
from ppx.rules.subscriptions.actions import (
    CadenceBody,
    CancelBody,
    PauseBody,
    SubscriptionActions,
    _Body,
)
from ppx.rules.subscriptions.lifecycle import Subscription, TransitionError
from ppx.rules.subscriptions.store import SubscriptionStore

ACTIONS = ("pause", "skip", "resume", "cadence", "cancel")
#: The notice shown after each action (catalogue key under ``subscriptions.done``).
DONE = ("paused", "skipped", "resumed", "cadence", "saved", "cancelled")

_ACTIONS: weakref.WeakKeyDictionary[Portal, SubscriptionActions] = weakref.WeakKeyDictionary()
_READS: weakref.WeakKeyDictionary[Portal, SubscriptionStore] = weakref.WeakKeyDictionary()


def actions_of(portal: Portal) -> SubscriptionActions:
    """The rules' subscription actions over the portal's ledger and model client (one per app)."""
    got = _ACTIONS.get(portal)
    if got is None:
        engine = portal.engine
        got = SubscriptionActions(
            portal.policy, SubscriptionStore(engine.ledger), engine.models, clock=lambda: portal.now
        )
        _ACTIONS[portal] = got
    return got


def reads_of(portal: Portal) -> SubscriptionStore:
    """The subscription tables read without the ledger's write lock (see ``reader``)."""
    got = _READS.get(portal)
    if got is None:
        actions_of(portal)  # the tables exist once the actions' store was built
        got = SubscriptionStore(reader(portal.engine.ledger), create=False)
        _READS[portal] = got
    return got


def _own(ctx: PageContext, subscription_id: int) -> Subscription:
    """The subscription if it is the signed-in customer's; else LookupError (a 403 page)."""
    try:
        sub = reads_of(ctx.portal).get(subscription_id)
    except TransitionError:
        raise LookupError("no such subscription") from None
    if sub.customer_id != ctx.customer_id:
        raise LookupError("no such subscription")  # looks exactly like a missing one
    return sub


def _open_offer(sub: Subscription, now: datetime) -> dict | None:
    offer = sub.pending_offer
    if offer is None or datetime.fromisoformat(offer["expires_at"]) <= now:
        return None
    return offer


def _product_name(ctx: PageContext, product_id: int) -> str:
    products = ctx.portal.store.products
    if product_id in products.index:
        return str(products.loc[product_id, C.NAME])
    return f"#{product_id}"


def _view(ctx: PageContext, sub: Subscription) -> dict:
    now = ctx.portal.now
    return {
        "sub": sub,
        "product": _product_name(ctx, sub.product_id),
        "offer": _open_offer(sub, now),
    }


def _render_list(
    ctx: PageContext, status: int = 200, error: str | None = None, error_sid: int | None = None
) -> Response:
    subs = reads_of(ctx.portal).of_customer(ctx.customer_id)
    rules = ctx.portal.policy.subscriptions
    today = ctx.portal.now.date()
    done = ctx.request.query_params.get("done")
    reasons = list(ctx.portal.policy.save_offers.stated_reasons)
    return ctx.render(
        "subscriptions.html.j2",
        status=status,
        subscriptions=[_view(ctx, s) for s in subs],
        cadences=rules.cadence_days,
        pause_min=(today + timedelta(days=rules.min_pause_days)).isoformat(),
        pause_max=(today + timedelta(days=rules.max_pause_days)).isoformat(),
        pause_default=(today + timedelta(days=max(rules.min_pause_days, 30))).isoformat()
        if rules.max_pause_days >= 30
        else (today + timedelta(days=rules.max_pause_days)).isoformat(),
        reasons=[
            (r, text(ctx, f"subscriptions.reasons.{r}", r.replace("_", " "))) for r in reasons
        ],
        done=done if done in DONE else None,
        error=error,
        error_sid=error_sid,
        product_name=lambda pid: _product_name(ctx, pid),
    )


async def subscriptions(ctx: PageContext) -> Response:
    require_account(ctx)
    return await run_in_threadpool(_render_list, ctx)


def _error_text(ctx: PageContext, action: str, err: TransitionError, sub: Subscription) -> str:
    """The shopper's words for a refusal by the rules, from the state and the policy."""
    rules = ctx.portal.policy.subscriptions
    t = ctx.words
    if err.status == 409:
        if sub.status == "cancelled":
            return t.tr("subscriptions.errors.cancelled")
        if action in ("pause", "skip") and sub.status == "paused":
            return t.tr("subscriptions.errors.paused")
        if action == "resume" and sub.status == "active":
            return t.tr("subscriptions.errors.not_paused")
        if action == "cadence":
            return t.tr("subscriptions.errors.same_cadence", days=sub.cadence_days)
        return t.tr("subscriptions.errors.conflict")
    if action == "pause":
        return t.tr(
            "subscriptions.errors.pause_range",
            min=rules.min_pause_days,
            max=rules.max_pause_days,
        )
    if action == "skip":
        return t.tr("subscriptions.errors.skips", max=rules.max_consecutive_skips)
    if action == "cadence":
        return t.tr(
            "subscriptions.errors.cadence", choices=", ".join(str(c) for c in rules.cadence_days)
        )
    return t.tr("subscriptions.errors.refused")


def _field(ctx: PageContext, name: str) -> str:
    value = ctx.form.get(name) if ctx.form is not None else None
    return value.strip() if isinstance(value, str) else ""


async def act(ctx: PageContext) -> Response:
    """POST ``/subscriptions/{id}/{action}``: one action of the rules, then back to the list."""
    require_account(ctx)
    sid = int(ctx.request.path_params["subscription_id"])
    action = ctx.request.path_params["action"]
    if action not in ACTIONS:
        raise LookupError(f"no subscription action {action!r}")
    sub = _own(ctx, sid)
    actions = actions_of(ctx.portal)
    key = form_key(ctx)
    t = ctx.words
    try:
        if action == "pause":
            raw = _field(ctx, "resume_on")
            try:
                resume_on = date.fromisoformat(raw)
            except ValueError:
                return _render_list(ctx, 400, t.tr("subscriptions.errors.date"), sid)
            actions.pause(sid, PauseBody(request_key=key, resume_on=resume_on))
            done = "paused"
        elif action == "skip":
            actions.skip(sid, _Body(request_key=key))
            done = "skipped"
        elif action == "resume":
            actions.resume(sid, _Body(request_key=key))
            done = "resumed"
        elif action == "cadence":
            raw = _field(ctx, "cadence_days")
            if not raw.isdigit() or not 1 <= int(raw) <= 365:
                return _render_list(ctx, 400, t.tr("subscriptions.errors.cadence_number"), sid)
            actions.change_cadence(sid, CadenceBody(request_key=key, cadence_days=int(raw)))
            done = "cadence"
        else:
            reason = _field(ctx, "reason") or None
            if reason is not None and reason not in ctx.portal.policy.save_offers.stated_reasons:
                return _render_list(ctx, 400, t.tr("subscriptions.errors.reason"), sid)
            res = await actions.cancel(sid, CancelBody(request_key=key, reason=reason))
            if res["status"] == "offer":
                return ctx.redirect("subscription_offer", subscription_id=sid)
            done = "cancelled"
    except TransitionError as err:
        return _render_list(ctx, err.status, _error_text(ctx, action, err, sub), sid)
    return ctx.redirect("subscriptions", _query=f"done={done}")


async def offer(ctx: PageContext) -> Response:
    """GET shows the open save offer; POST accepts it or confirms the cancel."""
    require_account(ctx)
    sid = int(ctx.request.path_params["subscription_id"])
    sub = _own(ctx, sid)
    now = ctx.portal.now
    if ctx.form is None:
        if _open_offer(sub, now) is None:  # expired, answered, or never made
            return ctx.redirect("subscriptions")
        return ctx.render(
            "subscription_offer.html.j2",
            product_name=lambda pid: _product_name(ctx, int(pid)),
            **_view(ctx, sub),
        )
    decision = _field(ctx, "decision")
    if decision not in ("accept", "confirm"):
        return _render_list(ctx, 400, ctx.words.tr("subscriptions.errors.decision"), sid)
    body = CancelBody(
        request_key=form_key(ctx),
        decision=decision,
        offer_id=_field(ctx, "offer_id") or None,
    )
    try:
        res = await actions_of(ctx.portal).cancel(sid, body)
    except TransitionError as err:
        if err.status == 409 and sub.status != "cancelled":
            msg = ctx.words.tr("subscriptions.errors.offer_gone")
        else:
            msg = _error_text(ctx, "cancel", err, sub)
        return _render_list(ctx, err.status, msg, sid)
    done = "saved" if res["status"] == "saved" else "cancelled"
    return ctx.redirect("subscriptions", _query=f"done={done}")


_ID = "/subscriptions/{subscription_id:int}"
ROUTES = [
    page("/subscriptions", subscriptions, name="subscriptions"),
    page(_ID + "/offer", offer, name="subscription_offer", methods=["GET", "POST"]),
    page(_ID + "/{action}", act, name="subscription_action", methods=["POST"]),
]
NAV = [("subscriptions.nav", "subscriptions")]
