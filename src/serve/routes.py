"""The routes the serving benchmark loads and the body each is sent, from the registry.

Every endpoint of every registered model is loaded with its one request example; an
endpoint's ``variants`` (the delivery estimate of a parcel in transit) are loaded as
routes of their own. The tests and the API documentation show the same bodies.
"""

from __future__ import annotations

from typing import Any

from ppx.models import registry


def _load_targets() -> dict[str, tuple[str, str, dict[str, Any]]]:
    """load name -> (endpoint name, route, body), in the registry's order."""
    out: dict[str, tuple[str, str, dict[str, Any]]] = {}
    for spec in registry.specs():
        for endpoint in spec.endpoints:
            for load_name, body in endpoint.examples().items():
                out[load_name] = (endpoint.name, endpoint.route, body)
    return out


_TARGETS = _load_targets()

#: load name -> route, in the order the benchmark runs them.
ROUTES: dict[str, str] = {name: route for name, (_, route, _) in _TARGETS.items()}


def endpoint_name(load_name: str) -> str:
    """The service endpoint a load name targets (``delivery_transit`` -> ``delivery_estimate``)."""
    return _TARGETS[load_name][0]


def example_request(load_name: str) -> dict[str, Any]:
    """The body the load generator sends for ``load_name`` (a fresh copy)."""
    return dict(_TARGETS[load_name][2])
