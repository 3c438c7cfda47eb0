"""The recs endpoint's request and response."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ppx.models.http import Id, RequestModel, ResponseModel, Timestamp

#: The one request example (docs, warm-up, tests, load generator).
REQUEST_EXAMPLE = {"customer_id": 42, "history": [12, 37], "k": 10}


class RecsRequest(RequestModel):
    """A customer to recommend for (mirrors ``ppx.models.recs.pyfunc``).

    Their history comes from the snapshot logged with the model; ``history`` adds
    products just bought (unknown ids are ignored and counted, never an error).
    """

    model_config = ConfigDict(json_schema_extra={"examples": [REQUEST_EXAMPLE]})

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
