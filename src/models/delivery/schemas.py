"""The delivery endpoints' request and response (raw facts in, distribution summaries out)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from ppx.models.http import Name, RequestModel, ResponseModel, Timestamp

#: An order at checkout: the one request example (docs, warm-up, tests, load generator).
REQUEST_EXAMPLE = {
    "warehouse": "wh_north",
    "dest_region": "east",
    "carrier": "swiftpost",
    "service_level": "standard",
    "ordered_at": "2025-12-01T10:30:00",
    "weight_kg": 1.2,
    "distance_km": 820.0,
    "promise_target": 0.9,
}

#: The same parcel in transit, re-estimated two days later.
TRANSIT_EXAMPLE = {
    **REQUEST_EXAMPLE,
    "as_of": "2025-12-03T09:00:00",
    "picked_up_at": "2025-12-01T18:00:00",
    "last_scan_type": "hub_scan",
    "last_scan_region": "east",
    "last_scan_at": "2025-12-02T22:00:00",
    "n_scans": 3,
}


class DeliveryRequest(RequestModel):
    """Raw facts of one order at checkout, or of a parcel in transit (``as_of`` set).

    Mirrors ``ppx.models.delivery.pyfunc`` (see its module docstring): categorical
    values must be ones the model was trained on, or the model answers 422 naming them.
    """

    model_config = ConfigDict(json_schema_extra={"examples": [REQUEST_EXAMPLE, TRANSIT_EXAMPLE]})

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
