"""The routes the serving benchmark loads and the documented example body each is sent."""

from __future__ import annotations

import sys
from typing import Any

from ppx.config import PROJECT_ROOT

#: endpoint name -> route, in the order the benchmark runs them.
ROUTES = {
    "delivery_estimate": "/delivery/estimate",
    "delivery_transit": "/delivery/estimate",
    "churn_score": "/churn/score",
    "fraud_return": "/fraud/return",
    "fraud_claim": "/fraud/claim",
    "recs_recommend": "/recs/recommend",
}
#: endpoint name -> (request model in serving.schemas, index of its documented example).
EXAMPLES = {
    "delivery_estimate": ("DeliveryRequest", 0),
    "delivery_transit": ("DeliveryRequest", 1),
    "churn_score": ("ChurnRequest", 0),
    "fraud_return": ("ReturnRequest", 0),
    "fraud_claim": ("ClaimRequest", 0),
    "recs_recommend": ("RecsRequest", 0),
}


def example_request(endpoint: str) -> dict[str, Any]:
    """The documented example body of ``endpoint`` (from its request model's OpenAPI examples).

    The examples mirror each model pyfunc's ``REQUEST_EXAMPLE``; the benchmark and the
    tests send exactly what the API documentation shows.
    """
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))  # serving/ sits beside the package
    from serving import schemas

    model, i = EXAMPLES[endpoint]
    return dict(getattr(schemas, model).model_config["json_schema_extra"]["examples"][i])
