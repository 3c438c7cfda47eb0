"""Delivery-date model: a calibrated distribution of delivery days per parcel.

A discrete-time hazard network (PyTorch) over days 0..``d_max`` gives the whole
distribution of the calendar-day offset between order and delivery; a conformal
recalibration on a held-out period makes the stated on-time rates hold. From it come
the P50 date, a promise at any target on-time rate, P(on time | promise date) and, for
a parcel in transit, P(late).
"""

from ppx.data import columns as C
from ppx.models.delivery.schemas import (
    REQUEST_EXAMPLE,
    TRANSIT_EXAMPLE,
    DeliveryRequest,
    DeliveryResponse,
)
from ppx.models.spec import EndpointSpec, ModelSpec

SPEC = ModelSpec(
    name="delivery",
    reads=(C.CUSTOMERS, C.PRODUCTS, C.ORDERS, C.ORDER_ITEMS, C.SHIPMENTS, C.TRACKING_EVENTS),
    summary="Delivery dates: a calibrated distribution of delivery days per parcel.",
    gate_metric="pinball_0_9",
    heads=("delivery",),
    config="ppx.models.delivery.config:DeliveryConfig",
    train="ppx.models.delivery.train:train",
    evaluate="ppx.models.delivery.train:evaluate_registered",
    served_model="ppx.models.delivery.pyfunc:DeliveryPyfunc",
    endpoints=(
        EndpointSpec(
            name="delivery_estimate",
            route="/delivery/estimate",
            request=DeliveryRequest,
            response=DeliveryResponse,
            example=REQUEST_EXAMPLE,
            doc="Delivery date distribution at checkout, or re-estimated in transit (as_of).",
            variants={"delivery_transit": TRANSIT_EXAMPLE},
        ),
    ),
    explain_candidates="ppx.models.delivery.candidates:candidate_rows",
    score_words=("expected transit time", "days", "orders"),
    features="ppx.models.delivery.features_doc:FEATURES",
    horizon="from order to doorstep",
    test_config="ppx.models.delivery.config:tiny",
    register_commands="ppx.models.delivery.commands:register",
    demo="ppx.models.delivery.commands:demo",
    tuning="ppx.models.delivery.tuning:TUNING",
)
