"""The BentoML decision service: the rules layer over HTTP.

Start it with ``bentoml serve serving.decision_service:DecisionService --port 3001`` from the
repository root, with the model service reachable at ``PPX_MODEL_SERVICE_URL`` (default
``http://127.0.0.1:3000``). Endpoints (all JSON):

* ``POST /decide/order-event`` ``{event, customer, scores?, model_inputs?}``
* ``POST /decide/return`` ``{request, customer, scores?, model_inputs?}``
* ``POST /decide/claim`` ``{request, customer, scores?, model_inputs?}``
* ``POST /decide/daily-batch`` ``{items: [{customer, now, scores?, model_inputs?}, ...]}``
* ``GET /loyalty/{customer_id}/balance``
* ``/subscriptions/{id}`` (pause, skip, resume, cadence, cancel with a save offer) and
  ``/returns`` (exchange, store credit or refund; receive): serving/self_service_routes.py

Endpoints are thin on purpose: validation is the pydantic models of ``ppx.rules``, the work
is :class:`ppx.rules.engine.DecisionEngine` (call the model service for the scores a
decision needs, apply the pure ``decide_*`` function, write the ledger). When a model call
fails or times out (``fallbacks.model_timeout_seconds`` of the policy), the policy's
documented fallback is used and the decision's ``reasons`` and ``fallbacks`` say so.

Configuration: ``PPX_DECISION_WORKERS`` (processes, default 1; the ledger is safe across
processes), ``PPX_POLICY`` (policy YAML; default the shipped one), ``PPX_LEDGER_URL``
(default a SQLite file under data/), ``PPX_MODEL_SERVICE_URL``, ``PPX_API_TOKEN`` (when set,
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

from ppx.rules import engine as E
from ppx.rules.ledger import Ledger
from ppx.rules.model_client import ModelClient
from ppx.rules.policy import load_policy
from ppx.rules.types import ClaimEvent, CustomerContext, OrderEvent, ReturnEvent, Scores
from serving.self_service_routes import returns_app, subscription_app

_ENGINE: E.DecisionEngine | None = None


def engine() -> E.DecisionEngine:
    """The process-wide engine (policy, model client, ledger), built on first use."""
    global _ENGINE
    if _ENGINE is None:
        policy = load_policy(os.environ.get("PPX_POLICY") or None)
        client = ModelClient(timeout=policy.fallbacks.model_timeout_seconds)
        _ENGINE = E.DecisionEngine(policy, client, Ledger(os.environ.get("PPX_LEDGER_URL")))
    return _ENGINE


def _invalid(err: ValidationError) -> InvalidArgument:
    parts = []
    for e in err.errors()[:5]:
        loc = ".".join(str(p) for p in e["loc"])
        parts.append(f"{loc}: {e['msg']}")
    return InvalidArgument("invalid request: " + "; ".join(parts))


def _json(res: E.DecisionResponse) -> Response:
    # Serialised by pydantic directly: BentoML's generic output path derives the JSON
    # schema of the return type on every response, which cost more than the decision.
    return Response(res.model_dump_json(), media_type="application/json")


async def _run(coro_factory):
    try:
        return await coro_factory()
    except ValidationError as err:
        raise _invalid(err) from None
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


loyalty_app = Starlette(routes=[Route("/{customer_id}/balance", _balance, methods=["GET"])])


#: Path prefixes behind the bearer token (the probes stay open).
_GUARDED = ("/decide/", "/loyalty/", "/subscriptions/", "/returns/")


class TokenMiddleware:
    """Bearer-token check for the decision and loyalty endpoints (probes stay open)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive, send) -> None:
        token = os.environ.get("PPX_API_TOKEN")
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if token and path.startswith(_GUARDED):
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


@bentoml.service(
    name="ppx-decisions",
    workers=int(os.environ.get("PPX_DECISION_WORKERS", "1")),
    traffic={"timeout": 30},
    metrics={"enabled": True, "namespace": "ppx_decisions"},
    logging={"access": {"enabled": os.environ.get("PPX_ACCESS_LOG", "0") == "1"}},
)
@bentoml.asgi_app(loyalty_app, path="/loyalty")
@bentoml.asgi_app(subscription_app(engine), path="/subscriptions")
@bentoml.asgi_app(returns_app(engine), path="/returns")
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
        res = await _run(lambda: engine().order_event(req))
        return _json(res)

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
        res = await _run(lambda: engine().return_(req))
        return _json(res)

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
        res = await _run(lambda: engine().claim(req))
        return _json(res)

    @bentoml.api(route="/decide/daily-batch")
    async def decide_daily_batch(self, items: list[dict[str, Any]]) -> dict:
        """Birthday, anniversary, win-back, replenishment and tier-up checks for many customers."""

        async def go():
            req = E.DailyBatchRequest.model_validate({"items": items})
            return await engine().daily_batch(req)

        res = await _run(go)
        return {"decisions": [r.model_dump(mode="json") for r in res]}


DecisionService.add_asgi_middleware(TokenMiddleware)

__all__ = ["DecisionService", "loyalty_app"]
