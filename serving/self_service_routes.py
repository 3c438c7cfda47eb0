"""Subscription and return self-service routes of the decision service (small ASGI apps).

Path parameters need routes BentoML's ``@bentoml.api`` does not give, so these are
Starlette apps mounted beside the service (like ``/loyalty``). Each handler only parses
the body and calls the rules layer (:mod:`ppx.rules.subscriptions.actions`,
:mod:`ppx.rules.returns_flow.desk`); the answers:

* 200 with the result (a retried request key answers the same, ``replayed: true``);
* 400 for a body that does not match the schema (the message names the field);
* 404 for an unknown subscription or return;
* 409 for an action the current state forbids (resuming an active subscription);
* 422 for arguments the policy refuses (a cadence not offered, a pause too long, a
  request key reused for another action, an exchange above the allowed difference).

Subscriptions (``/subscriptions``): ``GET /{id}``, ``PUT /{id}`` (register),
``POST /{id}/pause`` ``{resume_on}``, ``/skip``, ``/resume``, ``/cadence`` ``{cadence_days}``,
``/renew`` (a delivery went out),
``/cancel`` ``{reason?, decision?, offer_id?}``; every POST carries ``request_key`` or an
``Idempotency-Key`` header. Returns (``/returns``): ``POST /resolve`` ``{request, customer,
choice, scores?, model_inputs?}``, ``POST /{return_id}/receive`` ``{inspection?}``,
``GET /{return_id}``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ppx.data.errors import error_message, located_message
from ppx.rules.engine import DecisionEngine
from ppx.rules.returns_flow.decide import ResolutionError
from ppx.rules.returns_flow.desk import ReceiveRequest, ResolveRequest, ReturnsDesk
from ppx.rules.returns_flow.store import ReturnsStore
from ppx.rules.subscriptions.actions import (
    CadenceBody,
    CancelBody,
    PauseBody,
    RegisterBody,
    SubscriptionActions,
    _Body,
)
from ppx.rules.subscriptions.lifecycle import TransitionError
from ppx.rules.subscriptions.store import SubscriptionStore
from serving.errors import FAULT_HANDLERS


def _error(status: int, message: str, detail: list | None = None) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if detail:
        body["detail"] = detail
    return JSONResponse(body, status_code=status)


def _invalid(err: ValidationError) -> JSONResponse:
    errors = err.errors()[:10]
    detail = [{"loc": list(e["loc"]), "msg": error_message(e), "type": e["type"]} for e in errors]
    where = "; ".join(located_message(e) for e in errors[:3])
    return _error(400, f"invalid request: {where}", detail)


async def _body(request: Request, model: type[BaseModel]) -> BaseModel:
    raw = await request.body()
    data = json.loads(raw) if raw.strip() else {}
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return model.model_validate(data)


def _id(request: Request, name: str) -> int:
    raw = request.path_params[name]
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{name} must be a positive integer, got {raw!r}")
    return int(raw)


async def _answer(call: Callable[[], Any]) -> JSONResponse:
    """Run a handler body and map the rules layer's errors to statuses."""
    try:
        out = call()
        if asyncio.iscoroutine(out):
            out = await out
        return JSONResponse(json.loads(json.dumps(out, default=str)))
    except ValidationError as err:
        return _invalid(err)
    except TransitionError as err:
        return _error(err.status, str(err))
    except ResolutionError as err:
        return _error(422, str(err))
    except LookupError as err:
        return _error(404, str(err).strip("'\""))
    except json.JSONDecodeError as err:
        return _error(400, f"the body is not JSON: {err}")
    except ValueError as err:
        return _error(400, str(err))


def subscription_app(engine: Callable[[], DecisionEngine]) -> Starlette:
    """``/subscriptions`` over the decision engine's policy, model client and ledger."""
    box: dict[str, SubscriptionActions] = {}

    def actions() -> SubscriptionActions:
        if "a" not in box:
            e = engine()
            if e.ledger is None:
                raise ValueError("no ledger configured")
            box["a"] = SubscriptionActions(e.policy, SubscriptionStore(e.ledger), e.models)
        return box["a"]

    def post(method: str, model: type[BaseModel]):
        async def handler(request: Request) -> JSONResponse:
            async def go():
                sid = _id(request, "subscription_id")
                body = await _body(request, model)
                key = request.headers.get("idempotency-key")
                return await _maybe_async(getattr(actions(), method)(sid, body, key))

            return await _answer(go)

        return handler

    async def get(request: Request) -> JSONResponse:
        async def go():
            limit = int(request.query_params.get("limit", "50"))
            return actions().get(_id(request, "subscription_id"), max(1, min(limit, 500)))

        return await _answer(go)

    p = "/{subscription_id}"
    return Starlette(
        exception_handlers=FAULT_HANDLERS,  # a fault: the 500 under the request id
        routes=[
            Route(p, get, methods=["GET"]),
            Route(p, post("register", RegisterBody), methods=["PUT"]),
            Route(p + "/pause", post("pause", PauseBody), methods=["POST"]),
            Route(p + "/skip", post("skip", _Body), methods=["POST"]),
            Route(p + "/resume", post("resume", _Body), methods=["POST"]),
            Route(p + "/cadence", post("change_cadence", CadenceBody), methods=["POST"]),
            Route(p + "/renew", post("renew", _Body), methods=["POST"]),
            Route(p + "/cancel", post("cancel", CancelBody), methods=["POST"]),
        ],
    )


def returns_app(engine: Callable[[], DecisionEngine]) -> Starlette:
    """``/returns``: resolve a return (exchange, store credit, refund) and receive it."""
    box: dict[str, ReturnsDesk] = {}

    def desk() -> ReturnsDesk:
        if "d" not in box:
            e = engine()
            if e.ledger is None:
                raise ValueError("no ledger configured")
            box["d"] = ReturnsDesk(e, ReturnsStore(e.ledger, e.policy))
        return box["d"]

    async def resolve(request: Request) -> JSONResponse:
        async def go():
            return await desk().resolve(await _body(request, ResolveRequest))

        return await _answer(go)

    async def receive(request: Request) -> JSONResponse:
        async def go():
            rid = _id(request, "return_id")
            return desk().receive(rid, await _body(request, ReceiveRequest))

        return await _answer(go)

    async def get(request: Request) -> JSONResponse:
        async def go():
            return desk().store.summary(_id(request, "return_id"))

        return await _answer(go)

    return Starlette(
        exception_handlers=FAULT_HANDLERS,  # a fault: the 500 under the request id
        routes=[
            Route("/resolve", resolve, methods=["POST"]),
            Route("/{return_id}", get, methods=["GET"]),
            Route("/{return_id}/receive", receive, methods=["POST"]),
        ],
    )


async def _maybe_async(out):
    return await out if asyncio.iscoroutine(out) else out
