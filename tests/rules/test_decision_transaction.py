"""A decision's writes as the decision service makes them, on SQLite and PostgreSQL.

The service keeps the ledger, the preference centre and the outbox in one database: a
decision's points, its balance and its outbox rows commit together, and the customer's
stored facts (persisted tier, opt-outs) are read in one statement.
"""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from ppx.rules import engine as E
from ppx.rules.ledger import Ledger
from ppx.rules.messages.outbox import Outbox, OutboxRow
from ppx.rules.messages.preferences import PreferenceStore
from ppx.rules.types import CustomerContext


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    led = Ledger(url)
    yield led
    led.dispose()


def _service_engine(policy, ledger: Ledger) -> E.DecisionEngine:
    """The engine as ``engine_from_environment`` builds it (no model client: scores given)."""
    return E.DecisionEngine(
        policy, None, ledger, PreferenceStore(ledger.engine, policy), Outbox(ledger.engine)
    )


def _outbox_count(ledger: Ledger) -> int:
    with ledger.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(OutboxRow)).scalar_one())


def _request(late_delivery, customer_body) -> E.OrderEventRequest:
    body = {
        "event": late_delivery,
        "customer": {**customer_body, "push_opt_in": True},
        "scores": {"churn_risk": 0.42},
    }
    return E.OrderEventRequest.model_validate(body)


def test_a_decision_and_its_messages_are_written_together_or_not_at_all(
    policy, ledger, late_delivery, customer_body, monkeypatch
):
    eng = _service_engine(policy, ledger)
    req = _request(late_delivery, customer_body)
    enqueue = eng.outbox.enqueue

    def fails_after_writing(rows, conn=None):
        enqueue(rows, conn)
        raise RuntimeError("the outbox write failed")

    monkeypatch.setattr(eng.outbox, "enqueue", fails_after_writing)
    with pytest.raises(RuntimeError, match="outbox write failed"):
        asyncio.run(eng.order_event(req))
    assert ledger.count() == 0 and _outbox_count(ledger) == 0  # nothing half-written
    assert ledger.balance(42) == 0

    monkeypatch.setattr(eng.outbox, "enqueue", enqueue)
    res = asyncio.run(eng.order_event(req))  # the retried request writes everything
    assert {"earn", "apology"} <= {p["entry_type"] for p in res.ledger}
    assert all(p["created"] for p in res.ledger) and all(m["created"] for m in res.outbox)
    assert {"delivered", "apology"} <= {m["message_key"].split(":")[0] for m in res.outbox}
    assert res.balance == ledger.balance(42) == sum(p["points"] for p in res.ledger)
    entries, messages = ledger.count(), _outbox_count(ledger)
    assert (entries, messages) == (len(res.ledger), len(res.outbox))

    again = asyncio.run(eng.order_event(req))  # a replayed event adds nothing
    assert not any(p["created"] for p in again.ledger)
    assert not any(m["created"] for m in again.outbox)
    # (the first answer's tier-up gift persisted the new tier, so the replay has no gift)
    assert {p["entry_id"] for p in again.ledger} <= {p["entry_id"] for p in res.ledger}
    assert again.balance == res.balance
    assert (ledger.count(), _outbox_count(ledger)) == (entries, messages)


def test_the_stored_tier_and_opt_outs_are_read_together(
    policy, ledger, late_delivery, customer_body
):
    from ppx.rules.loyalty.tiers import review_tier

    eng = _service_engine(policy, ledger)
    req = _request(late_delivery, customer_body)
    c, why = eng._customer(req.customer)  # nothing stored: the caller's facts
    assert (c.tier, c.opted_out_channels, c.opted_out_messages) == ("silver", [], [])
    assert why == "tier silver: as given by the caller (no persisted tier)"

    review_tier(ledger, policy, 42, 2000.0)  # the programme's own record: platinum
    eng.preferences.put(42, {"channels": {"sms": False}, "kinds": {"delivered": {"push": False}}})
    c, why = eng._customer(req.customer)
    assert c.tier == "platinum" and why == "tier platinum: the customer's persisted tier"
    assert c.opted_out_channels == ["sms"]
    assert c.opted_out_messages == ["delivered:push"]

    res = asyncio.run(eng.order_event(req))  # the opted-out stage and channel are not used
    sent = {(m["message_key"].split(":")[0], m["channel"]) for m in res.outbox}
    assert ("apology", "email") in sent
    assert ("delivered", "push") not in sent and not any(ch == "sms" for _, ch in sent)
    assert "tier platinum: the customer's persisted tier" in res.decision.reasons


def test_reading_the_customer_does_not_wait_for_a_writer(policy, tmp_path, customer_body):
    """On SQLite the facts are read from a WAL snapshot, without the write lock: a decision
    reads while another process holds a write transaction open."""
    import sqlite3

    from ppx.rules.loyalty.tiers import review_tier

    led = Ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    eng = _service_engine(policy, led)
    review_tier(led, policy, 42, 2000.0)
    other = sqlite3.connect(tmp_path / "ledger.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process's write transaction, left open
    other.execute("DELETE FROM loyalty_tiers")  # not committed: invisible to the read
    try:
        customer = CustomerContext.model_validate(customer_body)
        c, why = eng._customer(customer)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert c.tier == "platinum" and why == "tier platinum: the customer's persisted tier"
    led.dispose()
