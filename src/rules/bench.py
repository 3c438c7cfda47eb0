"""Request bodies for load-testing the decision service (used by ``ppx bench serve``).

Each body is a realistic decision that needs a model call, so the figures include the
round trip to the model service: a late delivery for a subscriber (the churn model, three
ledger entries, the balance) and a return (the fraud model, the ledger's reversal check).
Every request gets its own order / return id, as in production, so the ledger really
writes instead of answering an idempotent replay.

The ids come from the model service's documented examples (each endpoint's example in its model spec), which
name accounts of the demo world; ``now`` is the churn model's own "now" (the end of its
training data) so the subscriber is active when scored.
"""

from __future__ import annotations

from functools import partial
from typing import Any

ROUTES = {"decide_order_event": "/decide/order-event", "decide_return": "/decide/return"}


def late_delivery(i: int, subscriber: int, now: str) -> dict[str, Any]:
    """A parcel delivered three days after its promise, for an active subscriber."""
    return {
        "event": {
            "event_type": "delivered",
            "order_id": 10_000_000 + i,
            "customer_id": subscriber,
            "occurred_at": now,
            "ordered_at": "2025-03-01T09:00:00",
            "order_value": 80,
            "promised_date": "2025-03-02",
            "delivered_at": now,
        },
        "customer": {
            "customer_id": subscriber,
            "tier": "silver",
            "spend_12m": 420,
            "subscription_id": 1,
            "email_opt_in": True,
            "push_opt_in": True,
        },
    }


def return_request(i: int, example: dict[str, Any]) -> dict[str, Any]:
    """The fraud model's documented return, as a decision request with its own id."""
    keys = ("order_id", "customer_id", "product_id", "requested_at", "delivered_at", "amount")
    return {
        "request": {"return_id": 1 + i, "reason": example["reason"]}
        | {k: example[k] for k in keys},
        "customer": {"customer_id": example["customer_id"], "tier": "gold", "spend_12m": 900},
    }


def body_makers(subscriber: int, now: str, return_example: dict[str, Any]) -> dict[str, Any]:
    """Endpoint name -> a picklable ``f(i) -> body`` for the load generator."""
    return {
        "decide_order_event": partial(late_delivery, subscriber=subscriber, now=now),
        "decide_return": partial(return_request, example=return_example),
    }
