"""Return-fraud and claim-fraud scoring: one PyTorch network with two heads.

``config`` holds the hyper-parameters, ``network`` the module, ``train`` fitting,
logging, registration and the promotion gate, ``evaluate`` metrics, baselines and the
oracle, ``pyfunc`` the served model, ``commands`` the CLI. Features live in
``ppx.features.fraud``.
"""

from ppx.data import columns as C
from ppx.models.fraud.schemas import (
    CLAIM_EXAMPLE,
    RETURN_EXAMPLE,
    ClaimRequest,
    FraudResponse,
    ReturnRequest,
)
from ppx.models.spec import EndpointSpec, ModelSpec

SPEC = ModelSpec(
    name="fraud",
    reads=(C.CUSTOMERS, C.ORDERS, C.ORDER_ITEMS, C.SHIPMENTS, C.RETURNS, C.CLAIMS),
    summary="Return and claim fraud: one network, two calibrated heads.",
    gate_metric="holdout_mean_pr_auc",  # the mean of the two heads' pr_auc
    greater_is_better=True,
    heads=("return", "claim"),
    config="ppx.models.fraud.config:FraudConfig",
    train="ppx.models.fraud.train:train",
    evaluate="ppx.models.fraud.evaluate:evaluate_registered",
    served_model="ppx.models.fraud.pyfunc:FraudPyfunc",
    endpoints=(
        EndpointSpec(
            name="fraud_return",
            route="/fraud/return",
            request=ReturnRequest,
            response=FraudResponse,
            example=RETURN_EXAMPLE,
            doc="Probability a return request is fraudulent (serial returns, wardrobing, rings).",
            columns={"kind": "return"},
        ),
        EndpointSpec(
            name="fraud_claim",
            route="/fraud/claim",
            request=ClaimRequest,
            response=FraudResponse,
            example=CLAIM_EXAMPLE,
            doc='Probability a delivery claim ("item not received", damage) is fraudulent.',
            columns={"kind": "claim"},
        ),
    ),
    explain_candidates="ppx.models.fraud.candidates:candidate_rows",
    explain_requests="ppx.models.fraud.candidates:wire_requests",
    score_words=("fraud probability", "", "requests"),
    features="ppx.models.fraud.features_doc:FEATURES",
    horizon="that the return or claim is fraudulent",
    test_config="ppx.models.fraud.config:tiny",
    register_commands="ppx.models.fraud.commands:register",
    demo="ppx.models.fraud.commands:demo",
    tuning="ppx.models.fraud.tuning:TUNING",
)
