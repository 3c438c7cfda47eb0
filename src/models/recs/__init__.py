"""recs: a sequential, repeat-aware recommender (SASRec-style transformer + replenishment).

See :mod:`ppx.models.recs.train` for the recipe and :mod:`ppx.models.recs.pyfunc` for
the served interface.
"""

from ppx.data import columns as C
from ppx.models.recs.schemas import REQUEST_EXAMPLE, RecsRequest, RecsResponse
from ppx.models.spec import EndpointSpec, ModelSpec

SPEC = ModelSpec(
    name="recs",
    reads=(C.CUSTOMERS, C.PRODUCTS, C.ORDERS, C.ORDER_ITEMS, C.INTERACTIONS),
    summary="Recommendations: a sequential, repeat-aware recommender.",
    gate_metric="ndcg_10",
    heads=("recs",),
    config="ppx.models.recs.config:RecsConfig",
    train="ppx.models.recs.train:train",
    evaluate="ppx.models.recs.train:evaluate_registered",
    served_model="ppx.models.recs.pyfunc:RecsPyfunc",
    endpoints=(
        EndpointSpec(
            name="recs_recommend",
            route="/recs/recommend",
            request=RecsRequest,
            response=RecsResponse,
            example=REQUEST_EXAMPLE,
            doc="Top-k products for a customer as of a moment (repeat, due and new items).",
        ),
    ),
    explain_candidates="ppx.models.recs.candidates:candidate_rows",
    score_words=("recommendation score", "", "customer-product pairs"),
    features="ppx.models.recs.features_doc:FEATURES",
    horizon="of the customer's top product; higher ranks first",
    test_config="ppx.models.recs.config:tiny",
    register_commands="ppx.models.recs.commands:register",
    demo="ppx.models.recs.commands:demo",
    tuning="ppx.models.recs.tuning:TUNING",
)
