"""The fraud endpoints' requests (a return, a delivery claim) and their shared response."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from ppx.data.columns import CLAIM_TYPES, RETURN_REASONS
from ppx.models.http import Id, LongStr, Name, RequestModel, ResponseModel, Timestamp

#: A return request: the return endpoint's one example (docs, warm-up, tests, load).
RETURN_EXAMPLE = {
    "customer_id": 42,
    "requested_at": "2025-11-03T10:15:00",
    "amount": 64.5,
    "product_id": 93,
    "reason": "changed_mind",
    "order_id": 123456,
    "ordered_at": "2025-10-28T09:00:00",
    "delivered_at": "2025-11-01T16:40:00",
}

#: A delivery claim: the claim endpoint's one example.
CLAIM_EXAMPLE = {
    "customer_id": 42,
    "requested_at": "2025-11-03T10:15:00",
    "amount": 64.5,
    "order_id": 123456,
    "ordered_at": "2025-10-28T09:00:00",
    "order_value": 64.5,
    "discount": 0.0,
    "promised_date": "2025-11-01",
    "delivered_at": "2025-11-02T16:40:00",
    "claim_type": "item_not_received",
    "signature": False,
    "gps_distance_m": 18.0,
    "exception_scan": False,
}


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

    model_config = ConfigDict(json_schema_extra={"examples": [RETURN_EXAMPLE]})

    product_id: Id = Field(description="The returned product.")
    reason: Literal[RETURN_REASONS] = Field(description="Return reason.")  # type: ignore[valid-type]


class ClaimRequest(FraudRequestBase):
    """A delivery claim to score before reshipping or refunding."""

    model_config = ConfigDict(json_schema_extra={"examples": [CLAIM_EXAMPLE]})

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
