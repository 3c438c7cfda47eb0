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
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serving.schemas import _openapi_30

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
        {},
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
    """BentoML's app factory whose API answers word a 4xx as :func:`_reworded` does.

    BentoML catches the ValidationError of an API's input (or of its body) inside
    ``api_endpoint_wrapper`` and builds the 400 itself; the subclass rewrites the body of
    an answer that is a 4xx once BentoML has built it. An answer below 400 is passed
    on after one comparison.
    """
    from _bentoml_impl.server.app import ServiceAppFactory

    class WordedErrors(ServiceAppFactory):
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
    JSON object, never BentoML's one-item list.

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
