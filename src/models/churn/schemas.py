"""The churn endpoint's request and response."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ppx.models.http import Id, RequestModel, ResponseModel, Timestamp

#: The one request example (docs, warm-up, tests, load generator).
REQUEST_EXAMPLE = {"customer_id": 630, "as_of": "2025-12-01"}


class ChurnRequest(RequestModel):
    """A customer to score (mirrors ``ppx.models.churn.pyfunc``).

    Their subscription and experience history comes from the snapshot logged with the
    model; features use only events strictly before ``as_of``.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [REQUEST_EXAMPLE]})

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
