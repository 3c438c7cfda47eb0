"""The model service's shared IO pieces: batch-aware input/output, per-item errors.

Why the glue: every endpoint accepts **one request object or a JSON array of them** and
answers in kind, while BentoML's adaptive batching wants each call to carry a list. The
input descriptor built by :func:`batch_input` normalises a single object to a list of one
(remembering that it did, in a context variable of the request's task) and validates each
item on its own so an error names the item and the field (``carrier`` for one object,
``3.carrier`` for the fourth item of a batch), worded by ``ppx.data.errors.error_message``
(a date that does not parse says the format). The output descriptor from
:func:`batch_output` unwraps the list again for single requests and turns per-item
failures (:class:`ItemError`) into a 4xx/503 answer instead of a 500.

Each model's request and response models live in its package (``ppx.models.<name>.
schemas``, named by its spec's endpoints); they mirror the raw facts the model's pyfunc
documents: the service never computes features itself, it hands these facts to the
pyfunc, which runs the same ``ppx.features`` code as training. The shared bases and the
response metadata (:class:`ResponseBase`, :class:`ReasonCode`) are ``ppx.models.http``'s.
"""

from __future__ import annotations

import contextvars
import json
import os
from dataclasses import dataclass, field
from typing import Any, ClassVar

from _bentoml_sdk.io_models import IORootModel
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError

from ppx.data.errors import error_message
from ppx.models.http import (  # noqa: F401 - the shared pieces, re-exported for serving
    MAX_STR,
    ReasonCode,
    RequestBase,
    RequestModel,
    ResponseBase,
    ResponseModel,
    ServiceModel,
)

#: Largest list one HTTP call may carry (and the adaptive batcher's max batch size).
MAX_BATCH = int(os.environ.get("PPX_MAX_BATCH", "256"))

_SINGLE: contextvars.ContextVar[bool] = contextvars.ContextVar("ppx_single", default=False)


@dataclass(frozen=True)
class ItemError:
    """A per-item failure travelling through the batcher in place of a response.

    One bad item must not fail the other clients' requests merged into the same batch,
    so the service scores items one by one when a batch fails and marks the bad ones.
    """

    status: int
    message: str
    #: seconds a 503's caller should wait before retrying (``Retry-After``)
    retry_after: int | None = None
    #: a 500's id, logged with its traceback (``X-Request-ID`` and ``request_id``)
    request_id: str | None = None
    #: a 500's exception (logged already; never in the answer)
    fault: BaseException | None = field(default=None, compare=False, repr=False)


# --- batch-aware IO descriptors -----------------------------------------------------------


def _invalid(loc: tuple, msg: str, title: str, input_: Any = None) -> ValidationError:
    return ValidationError.from_exception_data(
        title,
        [
            {
                "type": PydanticCustomError("invalid", "{msg}", {"msg": msg}),
                "loc": loc,
                "input": input_,
            }
        ],
    )


def _openapi_30(node: Any) -> Any:
    """Make pydantic's JSON schema fit BentoML's OpenAPI 3.0 ``Schema`` objects.

    3.0 has a single ``example`` (not ``examples``) and boolean exclusive bounds; keys
    the spec object does not know would make the whole ``/docs.json`` fail.
    """
    from bentoml._internal.service.openapi.specification import Schema

    allowed = {a.name for a in Schema.__attrs_attrs__} | {"$ref", "$defs"}
    if isinstance(node, list):
        return [_openapi_30(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "$defs"):
            out[key] = {k: _openapi_30(v) for k, v in value.items()}
        elif key == "examples" and isinstance(value, list) and value:
            out["example"] = value[0]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key in allowed:
            out[key] = _openapi_30(value)
    return out


def _union_schema(model: type[BaseModel], max_items: int, **kwargs: Any) -> dict[str, Any]:
    """``oneOf: [Model, array of Model]`` (BentoML would keep only the first ``anyOf``)."""
    schema = TypeAdapter(model | list[model]).json_schema(**kwargs)
    one, many = schema.pop("anyOf")
    many.update({"minItems": 1, "maxItems": max_items})
    schema["oneOf"] = [one, many]
    return _openapi_30(schema)


def batch_input(model: type[BaseModel], max_items: int = MAX_BATCH) -> type[IORootModel]:
    """A BentoML input descriptor accepting one ``model`` object or a list of them."""

    class BatchInput(IORootModel[list[model]]):  # type: ignore[valid-type]
        __root_input__: ClassVar[bool] = True

        @classmethod
        def model_validate_json(cls, json_data: Any, **kwargs: Any) -> BatchInput:
            try:
                parsed = json.loads(json_data)
            except ValueError as err:
                raise _invalid((), f"body is not valid JSON: {err}", model.__name__) from None
            return cls.model_validate(parsed)

        @classmethod
        def model_validate(cls, obj: Any, **kwargs: Any) -> BatchInput:
            if isinstance(obj, cls):
                return obj
            single = isinstance(obj, dict)
            _SINGLE.set(single)
            if single:
                items = [obj]
            elif isinstance(obj, list):
                if not obj:
                    raise _invalid((), "empty batch: send at least one request", model.__name__)
                if len(obj) > max_items:
                    raise _invalid(
                        (),
                        f"batch of {len(obj)} requests exceeds the limit of {max_items}",
                        model.__name__,
                    )
                items = obj
            else:
                raise _invalid(
                    (),
                    f"body must be a JSON object (one request) or an array of them, "
                    f"got {type(obj).__name__}",
                    model.__name__,
                )
            out, errors = [], []
            for i, item in enumerate(items):
                try:
                    out.append(model.model_validate(item))
                except ValidationError as err:
                    for e in err.errors(include_url=False):
                        loc = tuple(e["loc"]) if single else (i, *e["loc"])
                        errors.append(
                            {
                                "type": PydanticCustomError(
                                    e["type"], "{msg}", {"msg": error_message(e)}
                                ),
                                "loc": loc,
                                "input": None,
                            }
                        )
            if errors:
                raise ValidationError.from_exception_data(model.__name__, errors)
            return cls.model_construct(root=out)

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            schema = _union_schema(model, max_items, **kwargs)
            schema["root_input"] = True
            return schema

    BatchInput.__name__ = BatchInput.__qualname__ = f"{model.__name__}Batch"
    return BatchInput


def batch_output(model: type[BaseModel]) -> type[IORootModel]:
    """A BentoML output descriptor answering one object or a list, like the request."""
    list_adapter = TypeAdapter(list[model])

    class BatchOutput(IORootModel[list[model]]):  # type: ignore[valid-type]
        @classmethod
        async def to_http_response(cls, obj: Any, serde: Any) -> Any:
            from starlette.responses import JSONResponse, Response

            single = _SINGLE.get()
            failed = [(i, o) for i, o in enumerate(obj) if isinstance(o, ItemError)]
            if failed:
                status = max(o.status for _, o in failed)
                detail = [
                    {"loc": [] if single else [i], "msg": o.message, "status": o.status}
                    | ({"request_id": o.request_id} if o.request_id else {})
                    for i, o in failed
                ]
                body = {"error": failed[0][1].message, "detail": detail}
                headers = {}
                # a 503 (model loading, queue full) is temporary: say when to come back
                waits = [o.retry_after for _, o in failed if o.retry_after is not None]
                if waits:
                    headers["retry-after"] = str(max(waits))
                # a 500 says the id under which the log keeps its traceback (the first's)
                logged = [o for _, o in failed if o.request_id]
                if status == 500 and logged:
                    body["error"] = logged[0].message
                    body["request_id"] = headers["x-request-id"] = logged[0].request_id
                return JSONResponse(body, status, headers=headers or None)
            if single and len(obj) == 1:
                body = obj[0].__pydantic_serializer__.to_json(obj[0], exclude_none=True)
            else:
                body = list_adapter.dump_json(obj, exclude_none=True)
            return Response(body, media_type="application/json")

        @classmethod
        def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
            return _union_schema(model, MAX_BATCH, **kwargs)

    BatchOutput.__name__ = BatchOutput.__qualname__ = f"{model.__name__}Batch"
    return BatchOutput


def response_fields(response: type[BaseModel], record: dict[str, Any]) -> dict[str, Any]:
    """The pyfunc's output columns that the response model declares (meta excluded)."""
    meta = set(ResponseBase.model_fields)
    if response.model_config.get("extra") == "allow":
        return {k: v for k, v in record.items() if k not in meta}
    return {k: v for k, v in record.items() if k in response.model_fields and k not in meta}
