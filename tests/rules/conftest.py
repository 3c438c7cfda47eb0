"""Fixtures for the rules tests: the default policy, a customer (as a model and as
a request body), a late delivery event. The throwaway PostgreSQL (``postgres_url``)
is in tests/conftest.py.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from ppx.rules.ledger import Ledger
from ppx.rules.policy import load_policy
from ppx.rules.types import CustomerContext


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger(request, tmp_path):
    """An empty ledger on SQLite, and on the throwaway PostgreSQL (tests marked postgres)."""
    if request.param == "sqlite":
        lg = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    else:
        lg = Ledger(request.getfixturevalue("postgres_url"))
    yield lg
    lg.dispose()


@pytest.fixture(scope="session")
def policy():
    return load_policy()


@pytest.fixture()
def customer():
    def make(**kw) -> CustomerContext:
        base = dict(
            customer_id=42,
            tier="silver",
            spend_12m=350.0,
            orders_12m=6,
            returns_12m=0,
            signup_at=datetime(2023, 5, 10, 9, 0),
            email_opt_in=True,
            sms_opt_in=True,
            push_opt_in=True,
        )
        base.update(kw)
        return CustomerContext(**base)

    return make


@pytest.fixture()
def customer_body() -> dict:
    """A silver subscriber's customer block as the decision API takes it (a fresh dict)."""
    return {
        "customer_id": 42,
        "tier": "silver",
        "spend_12m": 420,
        "subscription_id": 9,
        "email_opt_in": True,
    }


@pytest.fixture()
def late_delivery() -> dict:
    """A delivered-event request body three days past its promised date (a fresh dict)."""
    return {
        "event_type": "delivered",
        "order_id": 5,
        "customer_id": 42,
        "occurred_at": "2025-03-05T12:00:00",
        "ordered_at": "2025-03-01T09:00:00",
        "order_value": 80,
        "promised_date": "2025-03-02",
        "delivered_at": "2025-03-05T12:00:00",
    }
