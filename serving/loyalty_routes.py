"""The loyalty programme over HTTP: the routes of the decision service's ``/loyalty`` app.

Thin on purpose: each route validates its input (pydantic models that forbid unknown
fields, so a 400 names the field) and calls one function of :mod:`ppx.rules.loyalty`.
Database work runs in the thread pool so a slow ledger write never stalls the event
loop that serves the order-event decisions. Refusals the programme decides (a balance
that does not cover a reward, a voucher already spent) are 409 with the reason; unknown
things (a reward id, a referral code) are 404.

Routes (all JSON; ``{cid}`` is a positive customer id):

* ``GET  /catalogue[?customer_id=]``      rewards, with affordability for a customer
* ``GET  /{cid}/summary[?tier=&now=]``     balance, tier, next reward, expiring points
* ``POST /{cid}/redeem``                   ``{reward_id, idempotency_key, order_id?, tier?}``
* ``GET  /{cid}/redemptions``              the customer's vouchers
* ``POST /{cid}/refund``                   ``{order_id, idempotency_key, points?, full?}``
* ``POST /vouchers/{code}/use``            ``{order_id}``
* ``GET  /{cid}/tier``                     current tier and its history
* ``POST /{cid}/tier``                     ``{spend_12m, at?}``: apply entry/retention rules
* ``GET  /{cid}/referral``                 code, link and the customer's referrals
* ``POST /referrals/attribute``            ``{referee_id, code, order_id, ordered_at,
  delivered_at?, identity?}``
* ``POST /referrals/delivered``            ``{order_id, delivered_at}``
* ``POST /referrals/settle``               ``{now?}``: pay referrals past the return window
* ``POST /expiry/run``                     ``{now?, customer_ids?}``: expire lapsed points
* ``POST /{cid}/expiry-reminder``          ``{customer, now}``: the reminder decision

Configuration: ``PPX_LINKAGE_STORE`` (a world or store folder) gives the fraud linkage
graph the referral check uses; without it only self-referral, cycle and first-order
checks run and the attribution's reason says so. ``identity`` in an attribution
carries raw identifiers of an account the graph does not hold yet (hashed on arrival).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ppx.data.errors import located_message
from ppx.rules.ledger import LedgerError
from ppx.rules.loyalty import catalogue as cat
from ppx.rules.loyalty import expiry, redemption, referrals, tiers
from ppx.rules.loyalty.summary import loyalty_summary
from ppx.rules.types import CustomerContext

Id = Annotated[int, Field(ge=1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RedeemBody(_Body):
    reward_id: str = Field(min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=180)
    order_id: Id | None = None
    tier: str | None = None


class RefundBody(_Body):
    order_id: Id
    idempotency_key: str = Field(min_length=1, max_length=180)
    points: Annotated[int, Field(ge=1)] | None = None
    full: bool = True
    at: datetime | None = None


class UseVoucherBody(_Body):
    order_id: Id


class TierBody(_Body):
    spend_12m: Annotated[float, Field(ge=0)]
    at: datetime | None = None


class Identity(_Body):
    device_id: str | None = None
    payment_fingerprint: str | None = None
    address: str | None = None
    region: str | None = None
    email: str | None = None
    phone: str | None = None


class AttributeBody(_Body):
    referee_id: Id
    code: str = Field(min_length=1, max_length=64)
    order_id: Id
    ordered_at: datetime
    delivered_at: datetime | None = None
    identity: Identity | None = None


class DeliveredBody(_Body):
    order_id: Id
    delivered_at: datetime


class SettleBody(_Body):
    now: datetime | None = None


class ExpiryBody(_Body):
    now: datetime | None = None
    customer_ids: list[Id] | None = Field(default=None, max_length=10_000)


class ReminderBody(_Body):
    customer: CustomerContext
    now: datetime


# --- helpers -------------------------------------------------------------------------------


def _engine():
    from serving.decision_service import engine

    return engine()


def _error(msg: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": msg}, status_code=status)


class _BadRequest(Exception):
    """Raised by the request readers below; :func:`_route` turns it into a 400 answer."""


def _route(handler: Callable[[Request], Awaitable[JSONResponse]]):
    """A route handler whose path, query and body readers may raise :class:`_BadRequest`."""

    @functools.wraps(handler)
    async def wrapped(request: Request) -> JSONResponse:
        try:
            return await handler(request)
        except _BadRequest as err:
            return _error(str(err))

    return wrapped


def _cid(request: Request) -> int:
    raw = request.path_params["customer_id"]
    if not raw.isdigit() or int(raw) < 1:
        raise _BadRequest(f"customer_id must be a positive integer, got {raw!r}")
    return int(raw)


async def _body(request: Request, model: type[BaseModel]) -> BaseModel:
    try:
        data = await request.json()
    except ValueError:
        raise _BadRequest("request body must be JSON") from None
    if not isinstance(data, dict):
        raise _BadRequest("request body must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        parts = []
        for e in err.errors()[:5]:
            if e["type"] == "extra_forbidden":
                e = {**e, "msg": "unknown field"}
            parts.append(located_message(e))
        raise _BadRequest("invalid request: " + "; ".join(parts)) from None


def _status_of(err: LedgerError) -> int:
    msg = str(err)
    if "unknown reward_id" in msg or "is not a referral code" in msg or "does not exist" in msg:
        return 404
    if "must be" in msg:
        return 400
    return 409  # a refusal by the programme's rules (balance, tier, spent voucher)


async def _call(fn: Callable[[], Any], status: int = 200) -> JSONResponse:
    try:
        out = await run_in_threadpool(fn)
    except LedgerError as err:
        return _error(str(err), _status_of(err))
    return JSONResponse(out, status_code=status)


def _query_dt(request: Request, name: str) -> datetime | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an ISO date-time, got {raw!r}") from None


# --- the linkage graph (loaded once, on the first attribution) -----------------------------

_GRAPH: dict[str, Any] = {}
_GRAPH_LOCK = threading.Lock()


def linkage_graph():
    """The fraud linkage graph of ``PPX_LINKAGE_STORE`` (None when not configured)."""
    path = os.environ.get("PPX_LINKAGE_STORE")
    if not path:
        return None
    with _GRAPH_LOCK:
        if _GRAPH.get("path") != path:
            _GRAPH.update(path=path, graph=referrals.linkage_graph_from_store(path))
        return _GRAPH["graph"]


# --- routes --------------------------------------------------------------------------------


@_route
async def catalogue(request: Request) -> JSONResponse:
    e = _engine()
    raw = request.query_params.get("customer_id")
    if raw is None:
        return JSONResponse(
            {"rewards": [cat.catalogue_entry(e.policy, r, None, None) for r in e.policy.rewards]}
        )
    if not raw.isdigit() or int(raw) < 1:
        return _error(f"customer_id must be a positive integer, got {raw!r}")

    def go():
        s = loyalty_summary(e.ledger, e.policy, int(raw))
        return {
            "customer_id": int(raw),
            "balance": s.balance,
            "tier": s.tier,
            "rewards": [
                cat.catalogue_entry(e.policy, r, s.balance, s.tier) for r in e.policy.rewards
            ],
        }

    return await _call(go)


@_route
async def summary(request: Request) -> JSONResponse:
    cid = _cid(request)
    now = _query_dt(request, "now")
    tier = request.query_params.get("tier")
    e = _engine()
    if tier is not None and tier not in e.policy.tier_names:
        return _error(f"tier must be one of {e.policy.tier_names}, got {tier!r}")
    return await _call(
        lambda: loyalty_summary(e.ledger, e.policy, cid, now=now, tier=tier).to_dict()
    )


@_route
async def redeem(request: Request) -> JSONResponse:
    cid = _cid(request)
    b = await _body(request, RedeemBody)
    e = _engine()

    def go():
        return redemption.redeem_reward(
            e.ledger,
            e.policy,
            cid,
            b.reward_id,
            b.idempotency_key,
            tier=b.tier,
            order_id=b.order_id,
        )

    try:
        r = await run_in_threadpool(go)
    except LedgerError as err:
        return _error(str(err), _status_of(err))
    return JSONResponse(r.to_dict(), status_code=201 if r.created else 200)


@_route
async def redemptions(request: Request) -> JSONResponse:
    cid = _cid(request)
    e = _engine()
    return await _call(lambda: {"redemptions": redemption.redemptions_of(e.ledger, cid)})


@_route
async def refund(request: Request) -> JSONResponse:
    cid = _cid(request)
    b = await _body(request, RefundBody)
    e = _engine()
    return await _call(
        lambda: redemption.refund_order(
            e.ledger, cid, b.order_id, b.idempotency_key, points=b.points, full=b.full, at=b.at
        ).to_dict()
    )


@_route
async def use_voucher(request: Request) -> JSONResponse:
    b = await _body(request, UseVoucherBody)
    code = request.path_params["code"]
    e = _engine()
    return await _call(lambda: redemption.use_voucher(e.ledger, code, b.order_id).to_dict())


@_route
async def tier_get(request: Request) -> JSONResponse:
    cid = _cid(request)
    e = _engine()
    return await _call(
        lambda: {
            "customer_id": cid,
            "current": tiers.current_tier(e.ledger, cid),
            "history": tiers.tier_history(e.ledger, cid),
        }
    )


@_route
async def tier_review(request: Request) -> JSONResponse:
    cid = _cid(request)
    b = await _body(request, TierBody)
    e = _engine()
    return await _call(
        lambda: tiers.review_tier(e.ledger, e.policy, cid, b.spend_12m, b.at).to_dict()
    )


@_route
async def referral(request: Request) -> JSONResponse:
    cid = _cid(request)
    e = _engine()
    return await _call(
        lambda: {
            **referrals.referral_code(e.ledger, e.policy, cid),
            **referrals.referrals_of(e.ledger, e.policy, cid),
        }
    )


@_route
async def attribute(request: Request) -> JSONResponse:
    b = await _body(request, AttributeBody)
    e = _engine()

    def go():
        import pandas as pd

        graph = linkage_graph()
        if graph is not None and b.identity is not None:
            row = {"customer_id": b.referee_id, **b.identity.model_dump(exclude_none=True)}
            graph = referrals.with_accounts(graph, pd.DataFrame([row]))
        return referrals.attribute_referral(
            e.ledger,
            e.policy,
            b.referee_id,
            b.code,
            b.order_id,
            b.ordered_at,
            graph=graph,
            delivered_at=b.delivered_at,
        ).to_dict()

    return await _call(go)


@_route
async def delivered(request: Request) -> JSONResponse:
    b = await _body(request, DeliveredBody)
    e = _engine()

    def go():
        r = referrals.record_delivery(e.ledger, e.policy, b.order_id, b.delivered_at)
        return {"order_id": b.order_id, "referral": None if r is None else r.to_dict()}

    return await _call(go)


@_route
async def settle(request: Request) -> JSONResponse:
    b = await _body(request, SettleBody)
    e = _engine()
    return await _call(
        lambda: {
            "settled": [r.to_dict() for r in referrals.settle_referrals(e.ledger, e.policy, b.now)]
        }
    )


@_route
async def expiry_run(request: Request) -> JSONResponse:
    b = await _body(request, ExpiryBody)
    e = _engine()
    return await _call(
        lambda: {
            "expired": [
                p.__dict__ for p in expiry.expire_due(e.ledger, e.policy, b.now, b.customer_ids)
            ]
        }
    )


@_route
async def expiry_reminder(request: Request) -> JSONResponse:
    cid = _cid(request)
    b = await _body(request, ReminderBody)
    if b.customer.customer_id != cid:
        return _error(
            f"customer.customer_id ({b.customer.customer_id}) differs from the path ({cid})"
        )
    e = _engine()

    def go():
        s = loyalty_summary(e.ledger, e.policy, cid, now=b.now, tier=b.customer.tier)
        expires_at = expiry.expiry_date(e.policy, s.last_activity_at) if s.expiring_points else None
        d = expiry.decide_expiry_reminder(
            b.customer,
            e.policy,
            b.now,
            s.expiring_points,
            expires_at,
            points_to_next_reward=s.points_to_next_reward,
            next_reward=s.next_reward_name,
        )
        return {"decision": d.model_dump(mode="json"), "summary": s.to_dict()}

    return await _call(go)


ROUTES = [
    Route("/catalogue", catalogue, methods=["GET"]),
    Route("/vouchers/{code}/use", use_voucher, methods=["POST"]),
    Route("/referrals/attribute", attribute, methods=["POST"]),
    Route("/referrals/delivered", delivered, methods=["POST"]),
    Route("/referrals/settle", settle, methods=["POST"]),
    Route("/expiry/run", expiry_run, methods=["POST"]),
    Route("/{customer_id}/summary", summary, methods=["GET"]),
    Route("/{customer_id}/redeem", redeem, methods=["POST"]),
    Route("/{customer_id}/redemptions", redemptions, methods=["GET"]),
    Route("/{customer_id}/refund", refund, methods=["POST"]),
    Route("/{customer_id}/tier", tier_get, methods=["GET"]),
    Route("/{customer_id}/tier", tier_review, methods=["POST"]),
    Route("/{customer_id}/referral", referral, methods=["GET"]),
    Route("/{customer_id}/expiry-reminder", expiry_reminder, methods=["POST"]),
]
