"""The BentoML decision service: the rules layer over HTTP.

Start it with ``bentoml serve serving.decision_service:DecisionService --port 3001`` from the
repository root, with the model service reachable at ``PPX_MODEL_SERVICE_URL`` (default
``http://127.0.0.1:3000``). Endpoints (all JSON):

* ``POST /decide/order-event`` ``{event, customer, scores?, model_inputs?}``
* ``POST /decide/return`` ``{request, customer, scores?, model_inputs?}``
* ``POST /decide/claim`` ``{request, customer, scores?, model_inputs?}``
* ``POST /decide/daily-batch`` ``{items: [{customer, now, scores?, model_inputs?}, ...]}``
* ``GET /loyalty/{customer_id}/balance`` and the loyalty programme's routes (summary,
  catalogue, redeem, refund, tier and tier history, referral code/link, attribution,
  settlement, expiry): see :mod:`serving.loyalty_routes`
* ``GET|PUT /preferences/{customer_id}`` (the preference centre) and
  ``POST /preferences/unsubscribe?token=...`` (signed one-click unsubscribe, RFC 8058),
  ``GET|POST /preferences/page?token=...`` (the shopper's page the email footer links to)
* ``POST /receipts/sms`` (the SMS provider's signed status callback) and
  ``POST /receipts/push`` (the push gateway's, with its bearer token): delivery receipts
  recorded on the outbox rows, see :mod:`serving.receipt_routes`
* Each decision's answer carries ``Server-Timing`` (``model``, ``decide``, ``ledger`` ...
  in ms: :func:`ppx.rules.engine.stage_timings`), so a slow answer says where its time went.
* ``GET /metrics`` (BentoML's): besides the request metrics, the realised on-time rate of
  the delivery promises of the last 28 days by carrier (``ppx_delivery_promise_*``):
  each ``placed`` order event records the model's 90 % promise in the
  ``delivery_promises`` table of the ledger database, each ``delivered`` / ``lost``
  event its outcome (:mod:`ppx.rules.promise_log`).
* ``/portal/``: the shopper's pages (tracking page, orders, returns, claims ...), signed in
  by magic links; needs ``PPX_PORTAL_SECRET`` and ``PPX_PORTAL_STORE`` (:mod:`ppx.portal.app`)
* ``/subscriptions/{id}`` (pause, skip, resume, cadence, cancel with a save offer) and
  ``/returns`` (exchange, store credit or refund; receive): serving/self_service_routes.py

Endpoints are thin on purpose: validation is the pydantic models of ``ppx.rules``, the work
is :class:`ppx.rules.engine.DecisionEngine` (call the model service for the scores a
decision needs, apply the pure ``decide_*`` function, write the ledger). When a model call
fails or times out (``fallbacks.model_timeout_seconds`` of the policy), the policy's
documented fallback is used and the decision's ``reasons`` and ``fallbacks`` say so.
Any other exception of a decision (the engine, the ledger, the outbox) is a 500 whose body
and ``X-Request-ID`` carry the request id under which the log holds the traceback
(``serving.errors.fault_response``); every answer carries ``X-Request-ID`` (the caller's
own when sane), and the model calls send it on to the model service.

Configuration: ``PPX_DECISION_WORKERS`` (processes, default 1; the ledger is safe across
processes), ``PPX_POLICY`` (policy YAML; default the shipped one), ``PPX_LEDGER_URL``
(default a SQLite file under data/), ``PPX_MODEL_SERVICE_URL``, ``PPX_DECISION_GC`` (0 keeps
Python's garbage-collector settings; see ``_settle_gc``), ``PPX_API_TOKEN`` (when set,
every endpoint but the probes needs ``Authorization: Bearer <token>``; the same token is
sent to the model service).
"""

from __future__ import annotations

import hmac
import json
import os
from typing import Any

import bentoml
from bentoml.exceptions import InvalidArgument
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ppx.data.errors import with_clear_messages
from ppx.portal.app import create_app as portal_app
from ppx.rules import engine as E
from ppx.rules.messages import unsubscribe
from ppx.rules.messages.outbox import Outbox
from ppx.rules.messages.preferences import PreferenceError, PreferenceStore
from ppx.rules.messages.render import preferences_page
from ppx.rules.types import ClaimEvent, CustomerContext, OrderEvent, ReturnEvent, Scores
from serving.bentoml_fixes import tracing_config
from serving.errors import (
    FAULT_HANDLERS,
    RequestIds,
    clear_validation_errors,
    readable_bad_requests,
)
from serving.loyalty_routes import ROUTES as LOYALTY_ROUTES
from serving.receipt_routes import receipts_app
from serving.self_service_routes import returns_app, subscription_app

_ENGINE: E.DecisionEngine | None = None


def engine() -> E.DecisionEngine:
    """The process-wide engine (policy, model client, ledger, preferences), built on first use.

    Messages are enqueued in the outbox only when ``PPX_OUTBOX=1``; the sender
    (``ppx messages send``, which needs ``PPX_UNSUBSCRIBE_SECRET``) renders and sends them.
    """
    global _ENGINE
    if _ENGINE is None:
        _ENGINE = E.engine_from_environment()
    return _ENGINE


def _json(res: E.DecisionResponse, stages: dict[str, float] | None = None) -> Response:
    # Serialised by pydantic directly: BentoML's generic output path derives the JSON
    # schema of the return type on every response, which cost more than the decision.
    headers = {"server-timing": server_timing(stages)} if stages else None
    return Response(res.model_dump_json(), media_type="application/json", headers=headers)


def server_timing(stages: dict[str, float]) -> str:
    """``Server-Timing`` of a decision's stages (ms): ``model;dur=31.20, decide;dur=0.12, ...``.

    What a slow answer spent its time on, readable by browsers' developer tools and
    by ``ppx bench serve`` (its ``server_p50_ms`` ... figures are their sum).
    """
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in stages.items())


async def _run(coro_factory):
    try:
        return await coro_factory()
    except ValidationError as err:  # a 400 naming each field (serving.errors words it)
        raise with_clear_messages(err) from None
    except ValueError as err:
        raise InvalidArgument(str(err)) from None


# --- /loyalty/{customer_id}/balance (a path parameter: a small mounted ASGI app) ----------


async def _balance(request: Request) -> JSONResponse:
    raw = request.path_params["customer_id"]
    if not raw.isdigit() or int(raw) < 1:
        return JSONResponse(
            {"error": f"customer_id must be a positive integer, got {raw!r}"}, status_code=400
        )
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        return JSONResponse({"error": "limit must be an integer"}, status_code=400)
    limit = max(1, min(limit, 500))
    return JSONResponse(engine().balance(int(raw), limit))


loyalty_app = Starlette(
    routes=[*LOYALTY_ROUTES, Route("/{customer_id}/balance", _balance, methods=["GET"])],
    exception_handlers=FAULT_HANDLERS,  # a fault: the 500 under the request id
)


# --- /preferences: the preference centre and one-click unsubscribe -------------------------


def _customer_id(request: Request) -> int | JSONResponse:
    raw = request.path_params["customer_id"]
    if not raw.isdigit() or int(raw) < 1:
        return JSONResponse(
            {"error": f"customer_id must be a positive integer, got {raw!r}"}, status_code=400
        )
    return int(raw)


def _preferences_store() -> PreferenceStore:
    store = engine().preferences
    assert store is not None
    return store


async def _get_preferences(request: Request) -> JSONResponse:
    cid = _customer_id(request)
    if isinstance(cid, JSONResponse):
        return cid
    return JSONResponse(_preferences_store().get(cid))


async def _put_preferences(request: Request) -> JSONResponse:
    cid = _customer_id(request)
    if isinstance(cid, JSONResponse):
        return cid
    try:
        body = await request.json()
    except ValueError:
        return JSONResponse({"error": "the body must be JSON"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    try:
        return JSONResponse(_preferences_store().put(cid, body))
    except PreferenceError as err:
        return JSONResponse({"error": str(err)}, status_code=400)


async def _one_click(request: Request) -> JSONResponse:
    """RFC 8058: the mail client POSTs ``List-Unsubscribe=One-Click`` to the signed URL."""
    from ppx.config import get_settings

    token = request.query_params.get("token", "")
    try:
        scope = unsubscribe.read_token(token, get_settings().unsubscribe_secret)
    except unsubscribe.InvalidToken as err:
        return JSONResponse({"error": str(err)}, status_code=403)
    try:
        prefs = _preferences_store().unsubscribe(scope)
    except PreferenceError as err:
        return JSONResponse({"error": str(err)}, status_code=400)
    return JSONResponse(
        {"unsubscribed": {"kind": scope.kind, "channel": scope.channel}, "preferences": prefs}
    )


def _page_scope(request: Request):
    from ppx.config import get_settings

    token = request.query_params.get("token", "")
    scope = unsubscribe.read_token(token, get_settings().unsubscribe_secret)
    if scope.kind != "*":
        raise unsubscribe.InvalidToken("this link is for one message kind, not the page")
    return scope, token


async def _page(request: Request) -> Response:
    """The shopper's preference page (the footer link): GET shows, POST saves the form."""
    from urllib.parse import quote

    from ppx.config import get_settings

    try:
        scope, token = _page_scope(request)
    except unsubscribe.InvalidToken as err:
        return JSONResponse({"error": str(err)}, status_code=403)
    lang = request.query_params.get("lang", "en")
    store = _preferences_store()
    saved = False
    if request.method == "POST":
        form = await request.form()
        store.set_channel_kinds(scope.customer_id, scope.channel, set(form.getlist("kind")))
        saved = True
    html = preferences_page(
        store.get(scope.customer_id),
        scope.channel,
        lang,
        get_settings().brand_name,
        action=f"/preferences/page?token={quote(token)}&lang={quote(lang)}",
        saved=saved,
    )
    return Response(html, media_type="text/html; charset=utf-8")


preferences_app = Starlette(
    exception_handlers=FAULT_HANDLERS,
    routes=[
        Route("/unsubscribe", _one_click, methods=["POST"]),
        Route("/page", _page, methods=["GET", "POST"]),
        Route("/{customer_id}", _get_preferences, methods=["GET"]),
        Route("/{customer_id}", _put_preferences, methods=["PUT"]),
    ],
)


# --- /receipts: delivery receipts from the SMS and push gateways ---------------------------

_RECEIPT_OUTBOX: Outbox | None = None


def _receipt_stores() -> tuple[Outbox, PreferenceStore | None]:
    """The outbox the receipts update (the engine's, or one over the ledger's database
    when this service does not enqueue) and the preference centre."""
    global _RECEIPT_OUTBOX
    e = engine()
    if e.outbox is not None:
        return e.outbox, e.preferences
    if _RECEIPT_OUTBOX is None:
        _RECEIPT_OUTBOX = Outbox(e.ledger.engine)
    return _RECEIPT_OUTBOX, e.preferences


#: Path prefixes behind the bearer token (the probes stay open; ``/receipts`` checks the
#: gateway's own signature or token).
_GUARDED = ("/decide/", "/loyalty/", "/subscriptions/", "/returns/")


class TokenMiddleware:
    """Bearer-token check for the decision and loyalty endpoints (probes stay open)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        token = os.environ.get("PPX_API_TOKEN")
        path = scope.get("path", "") if scope["type"] == "http" else ""
        guarded = (
            path.startswith(_GUARDED)
            # the one-click link and the page carry their own HMAC-signed token; the rest of
            # /preferences is the brand's API
            or (
                path.startswith("/preferences/")
                and path not in ("/preferences/unsubscribe", "/preferences/page")
            )
        )
        if token and guarded:
            headers = {
                k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]
            }
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                body = json.dumps({"error": "missing or wrong bearer token"}).encode()
                await send(
                    {
                        "type": "http.response.start",
                        "status": 401,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def _settle_gc() -> None:
    """Freeze what is alive after start-up and collect the young generation less often.

    A decision allocates few objects that outlive it (reference counting frees the rest),
    but at the default threshold (700) a young collection ran every few requests and each
    walked the objects of every request in flight: about a tenth of the service's CPU at
    8 clients (py-spy), and tens of milliseconds when a collection reached the older
    generation. The start-up objects (policy, SQLAlchemy, BentoML, pydantic models) are
    moved to the permanent generation, as the model service does with its models.
    ``PPX_DECISION_GC=0`` keeps Python's defaults.
    """
    import gc

    gc.collect()
    gc.freeze()
    _, g1, g2 = gc.get_threshold()
    gc.set_threshold(10_000, g1, g2)


@bentoml.service(
    name="ppx-decisions",
    workers=int(os.environ.get("PPX_DECISION_WORKERS", "1")),
    traffic={"timeout": 30},
    metrics={"enabled": True, "namespace": "ppx_decisions"},
    tracing=tracing_config(),
    logging={"access": {"enabled": os.environ.get("PPX_ACCESS_LOG", "0") == "1"}},
)
@bentoml.asgi_app(loyalty_app, path="/loyalty")
@bentoml.asgi_app(preferences_app, path="/preferences")
@bentoml.asgi_app(receipts_app(_receipt_stores), path="/receipts")
@bentoml.asgi_app(subscription_app(engine), path="/subscriptions")
@bentoml.asgi_app(returns_app(engine), path="/returns")
@bentoml.asgi_app(portal_app(engine), path="/portal")
class DecisionService:
    """ppx decisions: loyalty points, messages, returns and claims, by policy.

    Each decision returns the actions, the planned messages, the net points, and a
    human-readable reason for each; ``fallbacks`` lists every model that could not be
    used and what the policy did instead.
    """

    def __init__(self) -> None:
        from serving.bentoml_fixes import fix_timeout_timers, quiet_validation_errors

        fix_timeout_timers()
        quiet_validation_errors()
        engine()
        if os.environ.get("PPX_DECISION_GC", "1") != "0":
            _settle_gc()

    @bentoml.api(route="/decide/order-event")
    async def decide_order_event(
        self,
        event: OrderEvent,
        customer: CustomerContext,
        scores: Scores | None = None,
        model_inputs: dict[str, dict[str, Any]] | None = None,
    ) -> E.DecisionResponse:
        """Points, tiers, apologies, order/delay notices and thank-yous for an order event."""
        req = E.OrderEventRequest(
            event=event, customer=customer, scores=scores, model_inputs=model_inputs or {}
        )
        with E.stage_timings() as stages:
            res = await _run(lambda: engine().order_event(req))
        return _json(res, stages)

    @bentoml.api(route="/decide/return")
    async def decide_return(
        self,
        request: ReturnEvent,
        customer: CustomerContext,
        scores: Scores | None = None,
        model_inputs: dict[str, dict[str, Any]] | None = None,
    ) -> E.DecisionResponse:
        """Instant refund, refund on receipt, inspection or manual review for a return."""
        req = E.ReturnDecisionRequest(
            request=request, customer=customer, scores=scores, model_inputs=model_inputs or {}
        )
        with E.stage_timings() as stages:
            res = await _run(lambda: engine().return_(req))
        return _json(res, stages)

    @bentoml.api(route="/decide/claim")
    async def decide_claim(
        self,
        request: ClaimEvent,
        customer: CustomerContext,
        scores: Scores | None = None,
        model_inputs: dict[str, dict[str, Any]] | None = None,
    ) -> E.DecisionResponse:
        """Fast payout, standard review or investigation for a delivery claim."""
        req = E.ClaimDecisionRequest(
            request=request, customer=customer, scores=scores, model_inputs=model_inputs or {}
        )
        with E.stage_timings() as stages:
            res = await _run(lambda: engine().claim(req))
        return _json(res, stages)

    @bentoml.api(route="/decide/daily-batch")
    async def decide_daily_batch(self, items: list[dict[str, Any]]) -> dict:
        """Birthday, anniversary, win-back, replenishment and tier-up checks for many customers."""

        async def go():
            req = E.DailyBatchRequest.model_validate({"items": items})
            return await engine().daily_batch(req)

        res = await _run(go)
        return {"decisions": [r.model_dump(mode="json") for r in res]}


DecisionService.add_asgi_middleware(RequestIds)  # first: every answer carries X-Request-ID
DecisionService.add_asgi_middleware(TokenMiddleware)
clear_validation_errors(DecisionService)  # a bad date names its field and the format
readable_bad_requests(DecisionService)  # a 400 names the fields; a fault is a logged 500

__all__ = ["DecisionService", "loyalty_app", "preferences_app"]
