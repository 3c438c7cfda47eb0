"""Request and response models of the model service, and the batch-aware IO glue.

Why the glue: every endpoint accepts **one request object or a JSON array of them** and
answers in kind, while BentoML's adaptive batching wants each call to carry a list. The
input descriptor built by :func:`batch_input` normalises a single object to a list of one
(remembering that it did, in a context variable of the request's task) and validates each
item on its own so an error names the item and the field (``carrier`` for one object,
``3.carrier`` for the fourth item of a batch). The output descriptor from
:func:`batch_output` unwraps the list again for single requests and turns per-item
failures (:class:`ItemError`) into a 4xx/503 answer instead of a 500.

The request models mirror the raw facts each model's pyfunc documents (its module
docstring and ``REQUEST_EXAMPLE``): the service never computes features itself, it
hands these facts to the pyfunc, which runs the same ``ppx.features`` code as training.
"""

from __future__ import annotations

import contextvars
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from _bentoml_sdk.io_models import IORootModel
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
)
from pydantic_core import PydanticCustomError

from ppx.data.columns import CLAIM_TYPES, RETURN_REASONS

#: Largest list one HTTP call may carry (and the adaptive batcher's max batch size).
MAX_BATCH = int(os.environ.get("PPX_MAX_BATCH", "256"))
#: Longest identifier / free-text string accepted anywhere in a request.
MAX_STR = 64

_SINGLE: contextvars.ContextVar[bool] = contextvars.ContextVar("ppx_single", default=False)

Id = Annotated[int, Field(ge=1, le=2**53, description="Identifier from the canonical tables.")]
ShortStr = Annotated[str, Field(min_length=1, max_length=MAX_STR)]


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


class ServiceModel(BaseModel):
    """Strict base: unknown fields are an error naming the field, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RequestBase(ServiceModel):
    """Fields every request shares."""

    explain: bool = Field(
        default=False,
        description="Also return the top-3 reason codes (SHAP fast path) for this item.",
    )


class ReasonCode(ServiceModel):
    """One reason behind a score (``ppx.explain.reason_codes``, the SHAP fast path)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=True)

    feature: str = Field(description="Model feature name.")
    value: float | str | None = Field(default=None, description="The request's value.")
    baseline: float | None = Field(default=None, description="Typical (background) value.")
    contribution: float = Field(description="Signed effect on the headline score.")
    direction: str | None = Field(default=None, description="raises / lowers the score.")
    text: str | None = Field(default=None, description="Plain-language reason.")


class ResponseBase(ServiceModel):
    """Fields every response shares: which registered model and version answered."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model: str = Field(description="Registered model name, e.g. ppx-delivery.")
    version: str = Field(description="Registry version that produced the answer.")
    alias: str = Field(description="Registry alias the service loaded (e.g. champion).")
    reasons: list[ReasonCode] | None = Field(
        default=None, description="Top-3 reason codes when the request asked explain=true."
    )


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
                                "type": PydanticCustomError(e["type"], "{msg}", {"msg": e["msg"]}),
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
                    for i, o in failed
                ]
                # a 503 (model loading, queue full) is temporary: say when to come back
                waits = [o.retry_after for _, o in failed if o.retry_after is not None]
                headers = {"retry-after": str(max(waits))} if waits else None
                return JSONResponse(
                    {"error": failed[0][1].message, "detail": detail}, status, headers=headers
                )
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


# --- shared field types -------------------------------------------------------------------


def _plain_time(value: datetime) -> datetime:
    """Naive UTC, within the years a model can reason about (pandas cannot go further)."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    if not 2000 <= value.year <= 2100:
        raise ValueError("timestamp must be between the years 2000 and 2100")
    return value


Timestamp = Annotated[datetime, AfterValidator(_plain_time)]
Name = Annotated[
    str,
    Field(min_length=1, max_length=MAX_STR, pattern=r"^[A-Za-z0-9_.\- ]+$"),
]


class RequestModel(RequestBase):
    """Base of every endpoint's request: strict, finite numbers, bounded strings."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, allow_inf_nan=False, str_max_length=MAX_STR
    )


class ResponseModel(ResponseBase):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=True)


def response_fields(response: type[BaseModel], record: dict[str, Any]) -> dict[str, Any]:
    """The pyfunc's output columns that the response model declares (meta excluded)."""
    meta = set(ResponseBase.model_fields)
    if response.model_config.get("extra") == "allow":
        return {k: v for k, v in record.items() if k not in meta}
    return {k: v for k, v in record.items() if k in response.model_fields and k not in meta}


# --- delivery ------------------------------------------------------------------------------


class DeliveryRequest(RequestModel):
    """Raw facts of one order at checkout, or of a parcel in transit (``as_of`` set).

    Mirrors ``ppx.models.delivery.pyfunc`` (see its module docstring): categorical
    values must be ones the model was trained on, or the model answers 422 naming them.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "warehouse": "wh_north",
                    "dest_region": "east",
                    "carrier": "swiftpost",
                    "service_level": "standard",
                    "ordered_at": "2025-12-01T10:30:00",
                    "weight_kg": 1.2,
                    "distance_km": 820.0,
                    "promise_target": 0.9,
                },
                {
                    "warehouse": "wh_north",
                    "dest_region": "east",
                    "carrier": "swiftpost",
                    "service_level": "standard",
                    "ordered_at": "2025-12-01T10:30:00",
                    "as_of": "2025-12-03T09:00:00",
                    "picked_up_at": "2025-12-01T18:00:00",
                    "last_scan_type": "hub_scan",
                    "last_scan_region": "east",
                    "last_scan_at": "2025-12-02T22:00:00",
                    "n_scans": 3,
                },
            ]
        }
    )

    warehouse: Name = Field(description="Shipping warehouse, e.g. wh_north.")
    dest_region: Name = Field(description="Destination region, e.g. east.")
    carrier: Name = Field(description="Carrier, e.g. swiftpost.")
    service_level: Name = Field(description="standard or express.")
    ordered_at: Timestamp = Field(description="Order time (ISO 8601; naive = UTC).")
    weight_kg: float | None = Field(default=None, ge=0, le=1_000, description="Default: median.")
    distance_km: float | None = Field(
        default=None, ge=0, le=20_000, description="Default: the lane's median."
    )
    origin_region: Name | None = Field(default=None, description="Default: the warehouse's.")
    promised_days: float | None = Field(
        default=None, ge=0, le=90, description="Carrier SLA in days; default: lane median."
    )
    promise_target: float | None = Field(
        default=None, gt=0, lt=1, description="On-time rate the promise must reach (0.90)."
    )
    promise_date: Timestamp | None = Field(
        default=None, description="A promise date to price (p_on_time is for this date)."
    )
    as_of: Timestamp | None = Field(
        default=None, description="In transit: the moment of re-estimation (>= ordered_at)."
    )
    picked_up_at: Timestamp | None = Field(default=None, description="In transit: pick-up.")
    last_scan_type: Name | None = Field(
        default=None,
        description="In transit: label_created / picked_up / hub_scan / out_for_delivery / "
        "exception.",
    )
    last_scan_region: Name | None = Field(default=None, description="In transit.")
    last_scan_at: Timestamp | None = Field(default=None, description="In transit.")
    n_scans: int | None = Field(default=None, ge=0, le=1_000, description="In transit.")


class DeliveryResponse(ResponseModel):
    """Delivery-time distribution summaries; days count from the order date (0 = same day)."""

    stage: str = Field(description="checkout or transit.")
    p50_days: int | None = Field(description="Median delivery, days after the order date.")
    p50_date: str | None = Field(description="Median delivery date.")
    promise_target: float | None = None
    promise_days: int | None = Field(description="First day reaching the on-time target.")
    promise_date: str | None = None
    p_on_time_at_promise: float | None = None
    expected_days: float | None = None
    asked_promise_days: float | None = Field(
        default=None, description="The promise being priced (promise_date or the SLA)."
    )
    p_on_time: float | None = None
    p_late: float | None = None


# --- churn ---------------------------------------------------------------------------------


class ChurnRequest(RequestModel):
    """A customer to score (mirrors ``ppx.models.churn.pyfunc``).

    Their subscription and experience history comes from the snapshot logged with the
    model; features use only events strictly before ``as_of``.
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_id": 630, "as_of": "2025-12-01"}]}
    )

    customer_id: Id
    as_of: Timestamp | None = Field(
        default=None, description="Decision moment; default: the end of the training data."
    )


class ChurnResponse(ResponseModel):
    """Calibrated churn probabilities (null unless ``status`` is ``ok``)."""

    customer_id: int
    as_of: str | None = None
    status: str = Field(description="ok, no_active_subscription or unknown_customer.")
    p_churn_30: float | None = Field(default=None, description="P(cancel within 30 days).")
    p_churn_60: float | None = None
    p_churn_90: float | None = None
    expected_lifetime_days: float | None = Field(
        default=None, description="Expected remaining subscription life."
    )


# --- fraud ---------------------------------------------------------------------------------

LongStr = Annotated[str, Field(min_length=1, max_length=254)]


class FraudRequestBase(RequestModel):
    """Facts shared by return and claim requests (mirrors ``ppx.models.fraud.pyfunc``).

    Accounts the model's snapshot has not seen need the identity fields; raw contact
    values are normalised and hashed by the model on arrival and never stored.
    """

    model_config = ConfigDict(str_max_length=254)

    customer_id: Id
    requested_at: Timestamp = Field(description="When the return / claim was filed.")
    amount: float = Field(ge=0, le=1_000_000, description="Refund or claimed amount.")
    order_id: Id | None = None
    ordered_at: Timestamp | None = Field(default=None, description="Must precede the request.")
    order_value: float | None = Field(default=None, ge=0, le=1_000_000)
    discount: float | None = Field(default=None, ge=0, le=1_000_000)
    promised_date: Timestamp | None = None
    delivered_at: Timestamp | None = Field(
        default=None, description="Delivered scan; must precede the request."
    )
    signup_at: Timestamp | None = Field(default=None, description="New accounts only.")
    region: Name | None = None
    email: LongStr | None = None
    phone: Name | None = None
    address: LongStr | None = None
    device_id: Name | None = None
    payment_fingerprint: Name | None = None


class ReturnRequest(FraudRequestBase):
    """A return request to score before refunding."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "requested_at": "2025-11-03T10:15:00",
                    "amount": 64.5,
                    "product_id": 93,
                    "reason": "changed_mind",
                    "order_id": 123456,
                    "ordered_at": "2025-10-28T09:00:00",
                    "delivered_at": "2025-11-01T16:40:00",
                }
            ]
        }
    )

    product_id: Id = Field(description="The returned product.")
    reason: Literal[RETURN_REASONS] = Field(description="Return reason.")  # type: ignore[valid-type]


class ClaimRequest(FraudRequestBase):
    """A delivery claim to score before reshipping or refunding."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": 42,
                    "requested_at": "2025-11-03T10:15:00",
                    "amount": 64.5,
                    "order_id": 123456,
                    "ordered_at": "2025-10-28T09:00:00",
                    "order_value": 64.5,
                    "promised_date": "2025-11-01",
                    "delivered_at": "2025-11-02T16:40:00",
                    "claim_type": "item_not_received",
                    "signature": False,
                    "gps_distance_m": 18.0,
                    "exception_scan": False,
                }
            ]
        }
    )

    claim_type: Literal[CLAIM_TYPES] = Field(description="Claim type.")  # type: ignore[valid-type]
    signature: bool | None = Field(default=None, description="Delivery was signed for.")
    gps_distance_m: float | None = Field(
        default=None, ge=0, le=20_000_000, description="Delivered scan's distance from address."
    )
    exception_scan: bool | None = Field(
        default=None, description="Carrier reported an exception before the claim."
    )


class FraudResponse(ResponseModel):
    """Calibrated fraud probability and the review recommendation for the rules layer."""

    p_fraud: float = Field(description="Calibrated probability for the request's head.")
    head: str = Field(description="return or claim.")
    review_threshold: float = Field(description="Threshold chosen on validation.")
    review: bool
    recommendation: str = Field(description="review or approve.")
    ring_member: bool | None = Field(
        default=None,
        description="Linked (shared device, payment, address, e-mail or phone) to an account "
        "with fraud confirmed before the request.",
    )


# --- recs ----------------------------------------------------------------------------------


class RecsRequest(RequestModel):
    """A customer to recommend for (mirrors ``ppx.models.recs.pyfunc``).

    Their history comes from the snapshot logged with the model; ``history`` adds
    products just bought (unknown ids are ignored and counted, never an error).
    """

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"customer_id": 42, "history": [12, 37], "k": 10}]}
    )

    customer_id: Id
    history: list[Id] | None = Field(
        default=None, max_length=200, description="Product ids just purchased."
    )
    k: int = Field(default=10, ge=1, le=100, description="How many recommendations.")
    as_of: Timestamp | None = Field(
        default=None, description="Decision moment; default: the snapshot time."
    )


class RecsResponse(ResponseModel):
    """Top-k products, best first, with the model's scores."""

    customer_id: int
    product_ids: list[int]
    scores: list[float]
    source: str = Field(description="history, or popularity_fallback without usable history.")
    n_unknown_ignored: int = Field(description="Unknown product ids ignored from history.")
