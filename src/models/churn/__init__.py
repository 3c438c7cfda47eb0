"""Churn: who is about to cancel, when, and why — on subscriptions and any customer table.

A discrete-time survival network (PyTorch) over the next months, blended with a sparse
survival logistic regression (weight chosen on validation, :mod:`ppx.models.churn.blend`),
gives P(churn within 30/60/90 days) and an expected remaining lifetime for subscriptions
of the canonical schema; the same network with one output is a calibrated classifier for
a user's own customer table (``ppx train churn --table FILE``).
"""

from ppx.data import columns as C
from ppx.models.churn.schemas import REQUEST_EXAMPLE, ChurnRequest, ChurnResponse
from ppx.models.spec import EndpointSpec, ModelSpec

SPEC = ModelSpec(
    name="churn",
    reads=(C.CUSTOMERS, C.ORDERS, C.SUBSCRIPTIONS, C.SUBSCRIPTION_EVENTS),
    summary="Subscription churn: P(cancel within 30/60/90 days) and expected lifetime.",
    gate_metric="roc_auc",
    heads=("churn",),
    config="ppx.models.churn.config:ChurnConfig",
    train="ppx.models.churn.train:train",
    evaluate="ppx.models.churn.train:evaluate_registered",
    served_model="ppx.models.churn.pyfunc:ChurnPyfunc",
    endpoints=(
        EndpointSpec(
            name="churn_score",
            route="/churn/score",
            request=ChurnRequest,
            response=ChurnResponse,
            example=REQUEST_EXAMPLE,
            doc="Probability a customer's subscription churns within 30/60/90 days.",
        ),
    ),
    explain_candidates="ppx.models.churn.candidates:candidate_rows",
    score_words=("churn risk", "", "subscribers"),
    features="ppx.models.churn.features_doc:FEATURES",
    horizon="of cancelling within 30 days",
    test_config="ppx.models.churn.config:tiny",
    # >= 12 monthly snapshots (6 test + 3 validation + 3 train); the 12-month world has 11
    test_world_months=16,
    register_commands="ppx.models.churn.commands:register",
    demo="ppx.models.churn.commands:demo",
    tuning="ppx.models.churn.tuning:TUNING",
)
