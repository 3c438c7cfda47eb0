"""Building blocks of every model's HTTP request and response schemas.

Each model package declares the pydantic request/response models its endpoints serve
(``ppx.models.<name>.schemas``) from these bases, so the model's spec can name them and
the model service (``serving/``) only wraps them for batching. Strictness is shared:
unknown fields are an error naming the field, numbers are finite, strings are bounded.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict
from pydantic_core import PydanticCustomError

#: Longest identifier / free-text string accepted anywhere in a request.
MAX_STR = 64

Id = Annotated[int, Field(ge=1, le=2**53, description="Identifier from the canonical tables.")]
ShortStr = Annotated[str, Field(min_length=1, max_length=MAX_STR)]
LongStr = Annotated[str, Field(min_length=1, max_length=254)]


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

    feature: str = Field(description="The field the reason is about (its original name).")
    label: str | None = Field(default=None, description="The field in plain words.")
    value: float | str | None = Field(default=None, description="The request's value.")
    baseline: float | str | None = Field(
        default=None,
        description="Typical (background) value: a number's median, a category's most common.",
    )
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


#: Years a model can reason about (pandas timestamps cannot go much further).
FIRST_YEAR, LAST_YEAR = 2000, 2099


def _iso_text(value: object) -> object:
    """A timestamp arrives as ISO 8601 text (or a datetime in-process), never a number:
    the document says string, so epoch seconds are refused rather than guessed."""
    if not isinstance(value, str | datetime):
        # pydantic's own type for a value that is no date-time, so the 400 words it as
        # every other unreadable date (``ppx.data.errors.error_message``)
        raise PydanticCustomError("datetime_type", "Input should be an ISO 8601 date-time string")
    return value


def _plain_time(value: datetime) -> datetime:
    """Naive UTC, written within :data:`FIRST_YEAR`-:data:`LAST_YEAR` (the year as given,
    before the shift to UTC, so the check is the one the schema's pattern states)."""
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"timestamp must be between the years {FIRST_YEAR} and {LAST_YEAR}")
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


#: ISO 8601 date-time within the supported years; the pattern states the year range in
#: the OpenAPI document, where a date range cannot be written otherwise.
Timestamp = Annotated[
    datetime,
    BeforeValidator(_iso_text),
    Strict(False),  # within a strict request model: a date alone ("2025-11-01") is midnight
    AfterValidator(_plain_time),
    Field(json_schema_extra={"pattern": r"^20[0-9]{2}-"}),
]
Name = Annotated[
    str,
    Field(min_length=1, max_length=MAX_STR, pattern=r"^[A-Za-z0-9_.\- ]+$"),
]


class RequestModel(RequestBase):
    """Base of every endpoint's request: strict types (``0`` is not a boolean, ``"5"`` not
    a number: what the OpenAPI document declares is what is accepted), finite numbers,
    bounded strings."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        str_strip_whitespace=True,
        allow_inf_nan=False,
        str_max_length=MAX_STR,
    )


class ResponseModel(ResponseBase):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), allow_inf_nan=True)
