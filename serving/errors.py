"""The model service's error answers, and the OpenAPI document that declares them.

Every error the service sends has one body shape, :class:`ErrorBody`: ``error`` (one
sentence) and, when there is more to say, ``detail``, a list naming each failing item
and field. BentoML's generated document declares only 400/404/500 with ``detail`` as a
string, while the service answers 400 with a list (pydantic's errors, per item), and
also 401, 413, 415, 422, 503 and 504. :func:`document_errors` makes the served
``/docs.json`` (and the ``apis/openapi.yaml`` of a built bundle) say what the service
really answers (and that a request body is required), so a client generated from it,
or a contract fuzzer, sees no surprise.

422 deserves a word: a request can match the schema and still be refused by the model
that serves it, e.g. a warehouse or carrier the registered model was never trained on.
The served model is chosen at run time (registry alias), so its vocabulary cannot be
baked into the schema; the document declares the 422 and its body instead.

Both services word a 400's messages with ``ppx.data.errors.error_message`` (a date that
does not parse names the field and says ISO 8601): the model service in its batch input
(``serving.schemas``), the decision service through :func:`clear_validation_errors`. Both
say the route and the failing fields in the top-level ``error`` of a 400
(:func:`readable_bad_requests`), where BentoML would say "1 validation error for X".

A fault of ours is the same on both services: one ERROR line in the log with the request
id and the traceback, and a 500 whose body (:func:`fault_body`) and ``X-Request-ID``
header carry that id and never the exception's text (:func:`fault_message`). Every answer
of both services carries ``X-Request-ID`` (:class:`RequestIds`, :mod:`ppx.serve.request_ids`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ppx.serve import request_ids
from serving.schemas import _openapi_30

log = logging.getLogger("ppx.serving")

_REF = "#/components/schemas/{model}"


class ErrorItem(BaseModel):
    """One failing item or field."""

    model_config = ConfigDict(extra="allow", title="ErrorItem")

    loc: list[int | str] = Field(
        description="Where: the field path; in a batch the first element is the item's "
        "index. Empty when the whole body is at fault."
    )
    msg: str = Field(description="What is wrong, in plain words.")
    type: str | None = Field(default=None, description="Validation error type (400 only).")
    status: int | None = Field(
        default=None, description="This item's own status when scoring failed (422/500/503)."
    )
    request_id: str | None = Field(
        default=None,
        description="A 500's id: the service log has the traceback under it (500 only).",
    )


class ErrorBody(BaseModel):
    """The body of every error answer of the model service."""

    model_config = ConfigDict(title="ErrorBody")

    error: str = Field(description="What went wrong, in one sentence.")
    detail: list[ErrorItem] | None = Field(
        default=None,
        description="Each failing item or field, when there is more than the sentence.",
    )
    request_id: str | None = Field(
        default=None,
        description="A 500's id (also the X-Request-ID header): quote it; the service log "
        "has the traceback under it.",
    )


#: status -> (description, response headers it always carries)
ERRORS: dict[int, tuple[str, dict[str, str]]] = {
    400: (
        "The body is not JSON, or does not match the request schema; `detail` names the "
        "item and field of each error.",
        {},
    ),
    401: (
        "Missing or wrong bearer token (only when the service runs with PPX_API_TOKEN).",
        {"WWW-Authenticate": "Bearer"},
    ),
    413: ("Body larger than PPX_MAX_BODY_BYTES.", {}),
    415: ("Content-Type is not application/json.", {}),
    422: (
        "The request matches the schema but the served model refuses it: a categorical "
        "value it was not trained on (an unknown warehouse or carrier) or facts that "
        "contradict each other (a claim before delivery). `detail` names the field.",
        {},
    ),
    500: (
        "A fault in the service: `request_id` (and X-Request-ID) names the log entry with "
        "its traceback; the body holds no internals.",
        {"X-Request-ID": "The request's id (every answer carries it): the caller's own when sane."},
    ),
    503: (
        "The model behind this route is not loaded (not registered under the alias, or "
        "still loading), or the route's queue is full; retry after Retry-After seconds.",
        {"Retry-After": "Seconds to wait before retrying."},
    ),
    504: ("No answer started within the request timeout.", {}),
}


def error_components() -> dict[str, dict[str, Any]]:
    """The OpenAPI 3.0 schemas of :class:`ErrorBody` and :class:`ErrorItem`."""
    schema = ErrorBody.model_json_schema(ref_template=_REF)
    defs = schema.pop("$defs", {})
    return {name: _openapi_30(s) for name, s in {**defs, "ErrorBody": schema}.items()}


def error_responses() -> dict[int, dict[str, Any]]:
    """OpenAPI response objects for every status in :data:`ERRORS`."""
    ref = {"$ref": _REF.format(model="ErrorBody")}
    out: dict[int, dict[str, Any]] = {}
    for status, (description, headers) in ERRORS.items():
        response: dict[str, Any] = {
            "description": description,
            "content": {"application/json": {"schema": ref}},
        }
        if headers:
            response["headers"] = {
                name: {"description": text, "required": True, "schema": {"type": "string"}}
                for name, text in headers.items()
            }
        out[status] = response
    return out


def with_error_responses(spec: Any, routes: list[str]) -> Any:
    """``spec`` (BentoML's ``OpenAPISpecification``) with every route in ``routes``
    declaring the :data:`ERRORS` answers (replacing BentoML's 400/404/500) and its
    request body as required (OpenAPI's default is optional; a call without one is a 400).
    """
    import attr

    paths = dict(spec.paths)
    for route in routes:
        item = paths[route]
        post = dict(item.post)
        ok = {k: v for k, v in post["responses"].items() if 200 <= int(k) < 300}
        post["responses"] = {**ok, **error_responses()}
        post["requestBody"] = {**post["requestBody"], "required": True}
        paths[route] = attr.evolve(item, post=post)
    components = dict(spec.components or {})
    components["schemas"] = {**components.get("schemas", {}), **error_components()}
    return attr.evolve(spec, paths=paths, components=components)


def document_errors(service: Any) -> None:
    """Make ``service`` (a ``@bentoml.service``) publish its error answers in its
    OpenAPI document.

    BentoML 1.4 builds the document in the ``openapi_spec`` property of its ``Service``
    class and offers no hook; the service object gets a subclass whose property adds
    the responses (a subclass with no new slots, so the object keeps its layout).
    """
    base = type(service)
    if getattr(base, "_documents_errors", False):
        return

    class DocumentedService(base):  # type: ignore[misc, valid-type]
        __slots__ = ()
        _documents_errors = True

        @property
        def openapi_spec(self) -> Any:
            routes = [api.route for api in self.apis.values()]
            return with_error_responses(super().openapi_spec, routes)

    DocumentedService.__name__ = DocumentedService.__qualname__ = base.__name__
    service.__class__ = DocumentedService


def clear_validation_errors(service: Any) -> None:
    """Word the validation errors of every API of ``service`` (a ``@bentoml.service``)
    with :func:`ppx.data.errors.error_message`: a date that does not parse names the
    field and the format instead of pydantic's "invalid character in year".

    BentoML validates an API's parameters with a pydantic model it builds from the
    method's signature and answers a ``ValidationError`` 400 with its errors. Each API's
    input model is swapped for a subclass whose JSON parsing rewords the errors on the
    way out; a request that validates takes the same path as before, the rewording
    runs only once parsing has failed.
    """
    for method in service.apis.values():
        method.input_spec = _clearly_invalid(method.input_spec)


def _clearly_invalid(spec: type) -> type:
    from pydantic import ValidationError

    from ppx.data.errors import with_clear_messages

    if getattr(spec, "__ppx_clear_errors__", False):
        return spec

    parse = spec.model_validate_json.__func__  # BentoML's own, without super()'s cost

    def model_validate_json(cls: type, json_data: Any, **kwargs: Any) -> Any:
        try:
            return parse(cls, json_data, **kwargs)
        except ValidationError as err:
            raise with_clear_messages(err) from None

    return type(
        spec.__name__,
        (spec,),
        {
            "__module__": spec.__module__,
            "__qualname__": spec.__qualname__,
            "__ppx_clear_errors__": True,
            "model_validate_json": classmethod(model_validate_json),
        },
    )


# --- the sentence of a 400 ---------------------------------------------------------------

#: BentoML 1.4.39's top-level text of a 400 from a ValidationError (``_bentoml_impl.server.
#: app.ServiceAppFactory.api_endpoint_wrapper``): "2 validation errors for OrderEvent"
_BENTOML_SUMMARY = re.compile(r"^\d+ validation errors? for ")
#: items a 400's sentence lists before "and N more"; ``detail`` has them all
SAID_ITEMS = 3


def _item_said(item: Mapping[str, Any]) -> str:
    """One item of a 400's ``detail`` as ``where: what`` (the item of a batch first)."""
    loc = list(item.get("loc") or [])
    msg = str(item.get("msg", ""))
    batch = f"item {loc.pop(0)}: " if loc and isinstance(loc[0], int) else ""
    where = ".".join(str(p) for p in loc)
    if not where or msg.startswith(f"{where}: "):
        return batch + msg
    return f"{batch}{where}: {msg}"


def validation_sentence(route: str, detail: list[Mapping[str, Any]]) -> str:
    """The ``error`` of a 400: the route, then each failing field and what is wrong.

    ``/fraud/return: ordered_at: '03/12/2026' is not a date-time; expected ISO 8601 ...``
    for one error; ``/decide/order-event: 2 errors: (1) event.order_id: ...; (2) ...`` for
    several (the first few; ``detail`` keeps every one for machines).
    """
    said = [_item_said(d) for d in detail]
    if len(said) == 1:
        return f"{route}: {said[0]}"
    listed = " ".join(f"({i}) {s};" for i, s in enumerate(said[:SAID_ITEMS], 1)).rstrip(";")
    more = len(said) - SAID_ITEMS
    tail = f"; and {more} more in detail" if more > 0 else ""
    return f"{route}: {len(said)} errors: {listed}{tail}"


def _reworded(body: bytes, route: str) -> dict[str, Any] | None:
    """BentoML's body of a 4xx -> ppx's :class:`ErrorBody` (None: nothing to change).

    A ValidationError's body gets :func:`validation_sentence` as its ``error``; a
    ``BentoMLException`` answered 4xx comes as a one-item list (BentoML wraps it in a
    tuple) and is unwrapped.
    """
    try:
        data = json.loads(body)
    except ValueError:  # not JSON: not one of BentoML's bodies
        return None
    if isinstance(data, list) and len(data) == 1 and isinstance(data[0], dict):
        return data[0]
    if (
        isinstance(data, dict)
        and isinstance(data.get("detail"), list)
        and data["detail"]
        and _BENTOML_SUMMARY.match(str(data.get("error", "")))
    ):
        return {**data, "error": validation_sentence(route, data["detail"])}
    return None


def _factory_wording_errors() -> type:
    """BentoML's app factory whose API answers word a 4xx as :func:`_reworded` does, and
    answer an unexpected exception with :func:`fault_response`.

    BentoML catches the ValidationError of an API's input (or of its body) inside
    ``api_endpoint_wrapper`` and builds the 400 itself; the subclass rewrites the body of
    an answer that is a 4xx once BentoML has built it. An answer below 400 is passed
    on after one comparison.
    """
    from _bentoml_impl.server.app import ServiceAppFactory
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError

    class WordedErrors(ServiceAppFactory):
        async def api_endpoint(self, name: str, request: Any) -> Any:
            # a fault of ours (the handler raised something that is not a 4xx) is logged
            # under the request id and answered with it; BentoML would answer its generic
            # sentence and log the traceback with no id
            try:
                return await super().api_endpoint(name, request)
            except ValidationError:
                raise
            except BentoMLException as err:
                if err.error_code.value != 500:  # a 4xx, a 503 ...: BentoML's own answer
                    raise
                return fault_response(request.url.path, err)
            except Exception as err:
                return fault_response(request.url.path, err)

        async def api_endpoint_wrapper(self, name: str, request: Any) -> Any:
            resp = await super().api_endpoint_wrapper(name, request)
            if 400 <= resp.status_code < 500 and isinstance(getattr(resp, "body", None), bytes):
                data = _reworded(resp.body, request.url.path)
                if data is not None:
                    resp.body = resp.render(data)
                    resp.headers["content-length"] = str(len(resp.body))
            return resp

    return WordedErrors


def readable_bad_requests(service: Any) -> None:
    """Make the 4xx answers of ``service``'s APIs say what is wrong in their ``error``:
    the route and each failing field (BentoML says "1 validation error for X"), and one
    JSON object, never BentoML's one-item list; and answer an unexpected exception of an
    API with a logged 500 carrying the request id (:func:`fault_response`).

    BentoML 1.4 builds the ASGI app in ``Service.to_asgi`` with its
    ``ServiceAppFactory``; the service object gets a subclass (no new slots, as in
    :func:`document_errors`) whose ``to_asgi`` builds it with :func:`_factory_wording_errors`.
    """
    base = type(service)
    if getattr(base, "_words_bad_requests", False):
        return

    class WordedService(base):  # type: ignore[misc, valid-type]
        __slots__ = ()
        _words_bad_requests = True

        def to_asgi(self, is_main: bool = True) -> Any:
            self.inject_config()  # what BentoML's to_asgi does, with the factory swapped
            return _factory_wording_errors()(self, is_main=is_main)()

    WordedService.__name__ = WordedService.__qualname__ = base.__name__
    service.__class__ = WordedService


# --- a fault of ours: a logged 500 under the request id ------------------------------------


def fault_message(route: str, err: BaseException, rid: str) -> str:
    """The ``error`` of a 500: the route, the exception's type (never its text, which may
    hold internals) and the id under which the log keeps the traceback."""
    return f"{route}: internal error ({type(err).__name__}); request id {rid} in the service log"


def log_fault(route: str, err: BaseException, what: str = "request failed") -> tuple[str, str]:
    """Log ``err`` with its traceback under the id of the request being served (a new one
    outside a request); return ``(id, the 500's error sentence)``."""
    rid = request_ids.current() or request_ids.new_id()
    log.error("%s on %s (request id %s)", what, route, rid, exc_info=err)
    return rid, fault_message(route, err, rid)


def fault_body(message: str, rid: str) -> dict[str, Any]:
    """The :class:`ErrorBody` of a 500 (as the model service answers a failed item)."""
    item = {"loc": [], "msg": message, "status": 500, "request_id": rid}
    return {"error": message, "detail": [item], "request_id": rid}


def fault_response(route: str, err: BaseException) -> Any:
    """The 500 answering an unexpected exception of a handler, once logged."""
    from starlette.responses import JSONResponse

    rid, message = log_fault(route, err)
    return JSONResponse(fault_body(message, rid), 500, headers={request_ids.HEADER: rid})


def fault_answer(request: Any, err: BaseException) -> Any:
    """A Starlette exception handler (for ``Exception``) giving a mounted app's fault the
    500 of :func:`fault_response`; :class:`RequestIds` logs it, as the exception passes."""
    from starlette.responses import JSONResponse

    rid = request_ids.current() or request_ids.new_id()
    message = fault_message(_route(request.scope), err, rid)
    return JSONResponse(fault_body(message, rid), 500, headers={request_ids.HEADER: rid})


#: ``exception_handlers`` of the decision service's mounted Starlette apps
FAULT_HANDLERS: dict[Any, Any] = {Exception: fault_answer}


def _route(scope: dict) -> str:
    """The path the caller asked for (a mounted app's scope keeps its mount in root_path)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path if not root or path.startswith(root) else root + path


class RequestIds:
    """ASGI middleware: every HTTP request gets an id (:func:`ppx.serve.request_ids.accepted`
    of the caller's ``X-Request-ID``), set as :data:`~ppx.serve.request_ids.CURRENT` while it
    is served and answered in ``X-Request-ID`` (unless the answer already names one).

    Added before the services' other middleware, so their own answers (401, 413 ...)
    carry it too. An exception that reaches it (a mounted app's, a middleware's) is
    logged under the id and answered with the 500 when no answer has begun. Per request:
    one header look-up, a regular-expression match or a token, and one header appended.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope["headers"] if k.lower() == _HEADER), None)
        rid = request_ids.accepted(given.decode("latin-1") if given is not None else None)
        raw = rid.encode()
        started = False

        async def send_with_id(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers") or ())
                if not any(k.lower() == _HEADER for k, _ in headers):
                    headers.append((_HEADER, raw))
                    message = {**message, "headers": headers}
            await send(message)

        token = request_ids.CURRENT.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        except Exception as err:
            # an exception that no handler caught (a mounted app's, a middleware's): logged
            # here, once, under the id; answered with the 500 unless an answer has begun
            # (a mounted app's :func:`fault_answer`, Starlette's own text)
            route = _route(scope)
            rid, message = log_fault(route, err)
            if not started:
                answer = fault_body(message, rid)
                await _send_json(send_with_id, 500, answer)
        finally:
            request_ids.CURRENT.reset(token)


_HEADER = request_ids.HEADER.encode()


async def _send_json(send: Any, status: int, body: dict[str, Any]) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
