"""The routes the serving benchmark loads and the documented example body each is sent."""

from __future__ import annotations

from typing import Any

#: endpoint name -> route, in the order the benchmark runs them.
ROUTES = {
    "delivery_estimate": "/delivery/estimate",
    "delivery_transit": "/delivery/estimate",
    "churn_score": "/churn/score",
    "fraud_return": "/fraud/return",
    "fraud_claim": "/fraud/claim",
    "recs_recommend": "/recs/recommend",
}
#: endpoint name -> (request model in ppx.models.<name>.schemas, index of its example).
EXAMPLES = {
    "delivery_estimate": ("delivery.DeliveryRequest", 0),
    "delivery_transit": ("delivery.DeliveryRequest", 1),
    "churn_score": ("churn.ChurnRequest", 0),
    "fraud_return": ("fraud.ReturnRequest", 0),
    "fraud_claim": ("fraud.ClaimRequest", 0),
    "recs_recommend": ("recs.RecsRequest", 0),
}


def example_request(endpoint: str) -> dict[str, Any]:
    """The documented example body of ``endpoint`` (from its request model's OpenAPI examples).

    The examples mirror each model pyfunc's ``REQUEST_EXAMPLE``; the benchmark and the
    tests send exactly what the API documentation shows.
    """
    import importlib

    path, i = EXAMPLES[endpoint]
    package, model = path.split(".")
    schemas = importlib.import_module(f"ppx.models.{package}.schemas")
    return dict(getattr(schemas, model).model_config["json_schema_extra"]["examples"][i])
